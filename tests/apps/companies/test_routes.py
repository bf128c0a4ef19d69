from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from spendtrackr.apps.audit.models import AuditChainHead
from spendtrackr.apps.companies.models import Company
from tests.factories import create_user, signup


def test_read_and_update_company(client: TestClient) -> None:
    admin = signup(client, company_name="Initech")
    employee = create_user(client, admin)
    assert client.get("/companies/me", headers=employee.headers).json()["name"] == "Initech"
    updated = client.patch(
        "/companies/me", json={"name": "Initrode", "base_currency": "gbp"}, headers=admin.headers
    )
    assert updated.status_code == 200
    assert updated.json()["base_currency"] == "GBP"
    assert (
        client.patch("/companies/me", json={"name": "x"}, headers=employee.headers).status_code
        == 403
    )
    assert (
        client.patch(
            "/companies/me", json={"base_currency": "ZZZ"}, headers=admin.headers
        ).status_code
        == 422
    )
    assert (
        client.patch(
            "/companies/me", json={"id": admin.company_id}, headers=admin.headers
        ).status_code
        == 422
    )


def test_webhook_secret_rotation_shows_once_and_stores_only_a_hash(client: TestClient) -> None:
    admin = signup(client)
    first = client.post("/companies/me/webhook-secret", headers=admin.headers)
    assert first.status_code == 201
    second = client.post("/companies/me/webhook-secret", headers=admin.headers)
    assert first.json()["secret"] != second.json()["secret"]
    assert first.json()["secret"].startswith("whsec_")
    assert "secret" not in str(client.get("/companies/me", headers=admin.headers).json())
    employee = create_user(client, admin)
    assert client.post("/companies/me/webhook-secret", headers=employee.headers).status_code == 403
    entries = client.get(
        "/audit-logs?action=company.webhook_secret_rotated", headers=admin.headers
    ).json()
    assert entries["total"] == 2
    assert second.json()["secret"] not in str(entries)


def _authorizes(client: TestClient, secret: str) -> int:
    """The status a webhook call with this secret gets (an unknown card: 200 when accepted)."""
    return client.post(
        "/card-network/authorizations",
        json={
            "card_id": str(uuid.uuid4()),
            "amount": "1.00",
            "currency": "USD",
            "merchant_name": "Shop",
            "authorization_id": f"auth_{uuid.uuid4().hex}",
        },
        headers={"x-webhook-secret": secret},
    ).status_code


def test_a_rotation_may_keep_the_previous_secret_for_a_while(
    client: TestClient, app: FastAPI
) -> None:
    """Without an overlap the old secret stops at once (and the processor's calls fail until it
    is given the new one); with one, both work until the overlap ends."""
    admin = signup(client)
    rotate = "/companies/me/webhook-secret"
    first = client.post(rotate, headers=admin.headers).json()
    assert first["previous_valid_until"] is None
    second = client.post(
        rotate, json={"previous_expires_in_seconds": 3600}, headers=admin.headers
    ).json()
    until = datetime.fromisoformat(second["previous_valid_until"])
    assert timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
    assert _authorizes(client, first["secret"]) == 200
    assert _authorizes(client, second["secret"]) == 200

    # the overlap ends
    with Session(app.state.engine) as session:
        company = session.get(Company, uuid.UUID(admin.company_id))
        assert company is not None
        company.previous_webhook_secret_expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.commit()
    assert _authorizes(client, first["secret"]) == 401
    assert _authorizes(client, second["secret"]) == 200

    # a rotation without an overlap ends any earlier one at once
    third = client.post(
        rotate, json={"previous_expires_in_seconds": 600}, headers=admin.headers
    ).json()
    fourth = client.post(rotate, headers=admin.headers).json()
    assert fourth["previous_valid_until"] is None
    assert [_authorizes(client, s["secret"]) for s in (second, third, fourth)] == [401, 401, 200]
    for bad in (-1, 7 * 24 * 3600 + 1, "60", 1.5):
        refused = client.post(
            rotate, json={"previous_expires_in_seconds": bad}, headers=admin.headers
        )
        assert refused.status_code == 422, bad
    assert _authorizes(client, fourth["secret"]) == 200
    rotations = client.get(
        "/audit-logs?action=company.webhook_secret_rotated", headers=admin.headers
    ).json()
    assert [e["metadata"]["previous_valid_until"] is None for e in rotations["items"]] == [
        True,
        False,
        False,
        True,
    ]


def test_two_rotations_at_once_keep_both_secrets_in_the_overlap(
    app: FastAPI, client: TestClient, live_server: str
) -> None:
    """Two rotations with an overlap at once: each replaces the secret the other made, so the
    later one keeps the earlier one's secret as its previous one. Both read the company before
    either wrote it, and the later one kept the secret both had replaced: the earlier one's
    secret, just handed to an admin, was dead. The chain head (which every rotation's audit
    entry waits for) is held here until both requests are in, so they always meet."""
    if app.state.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: every transaction takes the database's write lock")
    admin = signup(client)
    rotate = "/companies/me/webhook-secret"
    assert client.post(rotate, headers=admin.headers).status_code == 201

    def rotation(_: int) -> dict[str, str]:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            response = http.post(
                rotate, json={"previous_expires_in_seconds": 600}, headers=admin.headers
            )
            assert response.status_code == 201, response.text
            return dict(response.json())

    company_id = uuid.UUID(admin.company_id)
    with app.state.engine.connect() as other, ThreadPoolExecutor(max_workers=2) as pool:
        held = select(AuditChainHead.seq).where(AuditChainHead.company_id == company_id)
        other.execute(held.with_for_update()).one()
        try:
            rotations = [pool.submit(rotation, n) for n in range(2)]
            time.sleep(0.5)  # both requests are now in, waiting for a lock
        finally:
            other.rollback()
        secrets = [r.result(timeout=30)["secret"] for r in rotations]
    assert [_authorizes(client, secret) for secret in secrets] == [200, 200]
