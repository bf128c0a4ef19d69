"""The database goes away (connections cut, new ones refused) and comes back: requests fail fast
with 503 `database_unavailable`, the API recovers by itself, and nothing answered 2xx is lost."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy.engine import make_url

from tests.factories import signup
from tests.faults.harness import ApiProcess, TcpProxy, wait_until

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("mysql"),
    reason="needs a database server to cut off (the run on MariaDB covers it)",
)


def test_database_cut_off_and_back(api_env: dict[str, str], logs: Path) -> None:
    real = make_url(api_env["DATABASE_URL"])
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 3306)
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    api = ApiProcess({**api_env, "DATABASE_URL": url}, logs).start()
    try:
        client = httpx.Client(base_url=api.url, timeout=30)
        admin = signup(client)  # type: ignore[arg-type]
        acknowledged: list[str] = []
        during: list[tuple[int, str, float]] = []
        outage = threading.Event()
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=api.url, timeout=30) as http:
                while not stop.is_set():
                    started = time.monotonic()
                    response = http.post(
                        "/spends",
                        json={"amount": "1.00", "currency": "USD", "spend_date": "2026-11-01"},
                        headers={**admin.headers, "Idempotency-Key": str(uuid.uuid4())},
                    )
                    if response.status_code == 201:
                        acknowledged.append(response.json()["id"])
                    if outage.is_set():
                        code = (
                            response.json().get("code", "") if response.status_code >= 400 else ""
                        )
                        during.append((response.status_code, code, time.monotonic() - started))

        workers = [threading.Thread(target=load) for _ in range(3)]
        for worker in workers:
            worker.start()
        wait_until(lambda: len(acknowledged) > 10)
        outage.set()
        proxy.cut()
        wait_until(lambda: len([d for d in during if d[0] == 503]) > 10, timeout=30)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        outage.clear()
        proxy.restore()
        count = len(acknowledged)
        wait_until(lambda: len(acknowledged) > count + 10, timeout=30)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)

        failures = [d for d in during if d[0] != 201]
        assert failures, "the outage was not seen"
        assert {(status, code) for status, code, _ in failures} <= {(503, "database_unavailable")}
        assert max(seconds for _, _, seconds in failures) < 6  # fast, not hanging
        assert client.get("/readyz").status_code == 200
        for spend_id in acknowledged:  # every 2xx survived
            assert client.get(f"/spends/{spend_id}", headers=admin.headers).status_code == 200
        assert "Traceback" not in logs.read_text()
    finally:
        api.stop()
        proxy.close()
