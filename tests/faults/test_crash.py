"""kill -9 of the API in the middle of a write load. After a restart every write that was
answered 2xx is there with its audit entry, the chain verifies, no approval step lacks its
spend, and receipt rows and stored files match (the sweep removes files a crash left behind)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import create_engine, text

from spendtrackr.apps.receipts import flows as receipt_flows
from spendtrackr.core.storage import LocalStorage
from spendtrackr.sessions import session_factory
from tests.conftest import make_settings
from tests.factories import approval_over, create_policy, create_user, signup
from tests.faults.harness import ApiProcess, wait_until
from tests.receipts import pdf_receipt


def test_kill9_during_writes_loses_nothing_acknowledged(
    api_env: dict[str, str], logs: Path
) -> None:
    env = {**api_env, "OCR_IN_PROCESS": "false"}
    api = ApiProcess(env, logs).start()
    client = httpx.Client(base_url=api.url, timeout=30)
    admin = signup(client)  # type: ignore[arg-type]
    create_user(client, admin, role="admin")  # type: ignore[arg-type]
    create_policy(client, admin, [approval_over(50, "role:admin")])  # type: ignore[arg-type]
    spends: list[str] = []
    receipts: list[str] = []
    stop = threading.Event()

    def write(i: int) -> None:
        with httpx.Client(base_url=api.url, timeout=30) as http:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = http.post(
                        "/spends",
                        json={
                            "amount": str(10 + (n % 90)),
                            "currency": "USD",
                            "spend_date": "2026-11-01",
                        },
                        headers={**admin.headers, "Idempotency-Key": f"{i}-{n}-{uuid.uuid4()}"},
                    )
                    if response.status_code == 201:
                        spends.append(response.json()["id"])
                        if n % 3 == 0:
                            upload = http.post(
                                "/receipts",
                                files={
                                    "file": (
                                        "r.pdf",
                                        pdf_receipt([f"Shop {i} {n}", "Total 5.00"]),
                                        "application/pdf",
                                    )
                                },
                                data={"spend_id": response.json()["id"]},
                                headers=admin.headers,
                            )
                            if upload.status_code == 201:
                                receipts.append(upload.json()["id"])
                except httpx.HTTPError:
                    time.sleep(0.05)  # the server is gone: keep trying until told to stop

    workers = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for worker in workers:
        worker.start()
    wait_until(lambda: len(spends) > 30 and len(receipts) > 3, timeout=60)
    api.kill9()
    stop.set()
    for worker in workers:
        worker.join(timeout=30)

    api = ApiProcess(env, logs).start()
    try:
        client = httpx.Client(base_url=api.url, timeout=30)
        token = client.post(
            "/auth/login", json={"email": admin.email, "password": "correct horse battery staple"}
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        for spend_id in spends:
            assert client.get(f"/spends/{spend_id}", headers=headers).status_code == 200
            trail = client.get(f"/audit-logs?entity_id={spend_id}", headers=headers).json()
            assert "spend.created" in [e["action"] for e in trail["items"]]
        for receipt_id in receipts:
            receipt = client.get(f"/receipts/{receipt_id}", headers=headers)
            assert receipt.status_code == 200
            assert client.get(f"/receipts/{receipt_id}/file", headers=headers).status_code == 200
        assert client.get("/audit-logs/verify", headers=headers).json()["valid"] is True
    finally:
        api.stop()

    engine = create_engine(api_env["DATABASE_URL"])
    with engine.connect() as conn:
        orphans = conn.execute(
            text(
                "SELECT count(*) FROM approval_step s LEFT JOIN spend p ON p.id = s.spend_id WHERE p.id IS NULL"
            )
        ).scalar_one()
        assert orphans == 0
        keys = {k for (k,) in conn.execute(text("SELECT storage_key FROM receipt"))}
    engine.dispose()
    storage = LocalStorage(Path(env["STORAGE_PATH"]))
    settings = make_settings(api_env["DATABASE_URL"])
    factory = session_factory(create_engine(api_env["DATABASE_URL"]))
    receipt_flows.sweep_orphan_files(factory, storage=storage, grace_seconds=0)
    on_disk = set(storage.keys_older_than(-1))
    company_keys = {k for k in keys if k.startswith(uuid.UUID(admin.company_id).hex)}
    assert on_disk == company_keys  # no file without its row, no row without its file
    assert settings.database_url
