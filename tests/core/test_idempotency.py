"""Idempotency-Key plumbing, exercised through a route that creates a vendor."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import APIRouter, FastAPI, Response
from fastapi.testclient import TestClient
from sqlalchemy import update

from spendtrackr.apps.catalog import service as catalog
from spendtrackr.apps.catalog.models import Vendor
from spendtrackr.apps.catalog.schemas import VendorCreate, VendorRead
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser
from spendtrackr.core.cache import CacheUnavailable
from spendtrackr.core.db import SessionDep, utcnow
from spendtrackr.core.idempotency import IdempotencyDep, IdempotencyRecord
from tests.factories import signup


class DownCache:
    """Redis configured but unreachable: every lock attempt fails."""

    backend = "redis"

    def set_nx(self, key: str, value: str, ttl_seconds: int) -> bool:
        raise CacheUnavailable("connection refused")

    def delete(self, key: str) -> None:
        return None

    def ping(self) -> bool:
        return False

    def close(self) -> None:
        return None


def _mount(app: FastAPI) -> None:
    if any(getattr(r, "path", "") == "/_test/idempotent-vendors" for r in app.routes):
        return
    router = APIRouter(dependencies=SIGNED_IN)

    @router.post(
        "/_test/idempotent-vendors",
        status_code=201,
        response_model=VendorRead,
        include_in_schema=False,
    )
    def create(
        body: VendorCreate, session: SessionDep, actor: AdminUser, idem: IdempotencyDep
    ) -> Response:
        return idem.run(
            session,
            company_id=actor.company_id,
            caller=f"user:{actor.id}",
            produce=lambda: VendorRead.model_validate(
                catalog.create_item(
                    session,
                    Vendor,
                    company_id=actor.company_id,
                    actor_id=actor.id,
                    fields=body.model_dump(),
                )
            ),
            response_type=VendorRead,
            status_code=201,
        )

    app.include_router(router)


@pytest.fixture
def idem_client(app: FastAPI, client: TestClient) -> TestClient:
    _mount(app)
    return client


def test_same_key_same_body_replays(idem_client: TestClient) -> None:
    admin = signup(idem_client)
    headers = {**admin.headers, "Idempotency-Key": "abc-123"}
    first = idem_client.post("/_test/idempotent-vendors", json={"name": "Acme"}, headers=headers)
    second = idem_client.post("/_test/idempotent-vendors", json={"name": "Acme"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert idem_client.get("/vendors", headers=admin.headers).json()["total"] == 1


def test_same_key_other_body_is_422(idem_client: TestClient) -> None:
    admin = signup(idem_client)
    headers = {**admin.headers, "Idempotency-Key": "k1"}
    idem_client.post("/_test/idempotent-vendors", json={"name": "One"}, headers=headers)
    reused = idem_client.post("/_test/idempotent-vendors", json={"name": "Two"}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


def test_a_retry_is_the_same_json_however_it_is_written(idem_client: TestClient) -> None:
    """Spacing and key order are not part of a request; values, their types and numbers' text
    are (3.00 is neither 3 nor "3.00")."""
    admin = signup(idem_client)
    headers = {
        **admin.headers,
        "Idempotency-Key": "written-twice",
        "Content-Type": "application/json",
    }

    def post(body: bytes) -> httpx.Response:
        return idem_client.post("/_test/idempotent-vendors", content=body, headers=headers)

    first = post(b'{"name":"Acme"}')
    assert first.status_code == 201
    again = post(b'{\n  "name" : "Acme"\n}\n')
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert post(b'{"name":"Acme Inc"}').json()["code"] == "idempotency_key_reused"
    assert idem_client.get("/vendors", headers=admin.headers).json()["total"] == 1


def test_keys_that_differ_only_in_case_are_two_keys(idem_client: TestClient) -> None:
    """Keys are compared byte for byte, on MySQL/MariaDB too (whose default collations fold
    case: `Key-A` used to replay, or refuse, the request of `key-a`)."""
    admin = signup(idem_client)
    first = idem_client.post(
        "/_test/idempotent-vendors",
        json={"name": "One"},
        headers={**admin.headers, "Idempotency-Key": "Key-A"},
    )
    second = idem_client.post(
        "/_test/idempotent-vendors",
        json={"name": "Two"},
        headers={**admin.headers, "Idempotency-Key": "key-a"},
    )
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert first.json()["id"] != second.json()["id"]


def test_keys_are_scoped_to_the_caller(idem_client: TestClient) -> None:
    first = signup(idem_client)
    second = signup(idem_client)
    for admin in (first, second):
        response = idem_client.post(
            "/_test/idempotent-vendors",
            json={"name": "Same"},
            headers={**admin.headers, "Idempotency-Key": "shared"},
        )
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers


def test_failed_request_is_not_stored(idem_client: TestClient) -> None:
    admin = signup(idem_client)
    idem_client.post("/vendors", json={"name": "Taken"}, headers=admin.headers)
    headers = {**admin.headers, "Idempotency-Key": "retry-me"}
    assert (
        idem_client.post(
            "/_test/idempotent-vendors", json={"name": "Taken"}, headers=headers
        ).status_code
        == 409
    )
    idem_client.delete(
        f"/vendors/{idem_client.get('/vendors', headers=admin.headers).json()['items'][0]['id']}",
        headers=admin.headers,
    )
    assert (
        idem_client.post(
            "/_test/idempotent-vendors", json={"name": "Taken"}, headers=headers
        ).status_code
        == 201
    )


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9".encode(), " leading-space"])
def test_invalid_keys_are_400(idem_client: TestClient, key: str | bytes) -> None:
    admin = signup(idem_client)
    response = idem_client.post(
        "/_test/idempotent-vendors",
        json={"name": "A"},
        headers={**admin.headers, "Idempotency-Key": key},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert idem_client.get("/vendors", headers=admin.headers).json()["total"] == 0


@pytest.mark.parametrize("redis_down", [False, True], ids=["with-cache", "cache-down"])
def test_sixteen_concurrent_duplicates_make_one_effect(
    idem_client: TestClient, app: FastAPI, live_server: str, redis_down: bool
) -> None:
    original = app.state.cache
    if redis_down:
        app.state.cache = DownCache()
    try:
        _burst(idem_client, live_server)
    finally:
        app.state.cache = original


def _burst(idem_client: TestClient, live_server: str) -> None:
    admin = signup(idem_client)
    key = f"burst-{uuid.uuid4()}"

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            return http.post(
                "/_test/idempotent-vendors",
                json={"name": "Burst"},
                headers={**admin.headers, "Idempotency-Key": key},
            )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(post, range(16)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status_code == 201]
    assert len({r.json()["id"] for r in created}) == 1
    assert sum(1 for r in created if "idempotent-replayed" not in r.headers) == 1
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["code"] == "idempotency_in_progress"
    assert idem_client.get("/vendors", headers=admin.headers).json()["total"] == 1


def test_an_expired_key_runs_again(app: FastAPI, idem_client: TestClient) -> None:
    """After the TTL the key's row is removed and the request runs as a new one."""
    admin = signup(idem_client)
    headers = {**admin.headers, "Idempotency-Key": "old-key"}
    first = idem_client.post("/_test/idempotent-vendors", json={"name": "Old"}, headers=headers)
    assert first.status_code == 201
    with app.state.session_factory() as session, session.begin():
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old-key")
            .values(created_at=utcnow() - timedelta(days=2))
        )
    again = idem_client.post("/_test/idempotent-vendors", json={"name": "New"}, headers=headers)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["name"] == "New"
    names = {v["name"] for v in idem_client.get("/vendors", headers=admin.headers).json()["items"]}
    assert names == {"Old", "New"}


def test_a_retry_after_the_books_closed_replays_the_first_answer(
    client: TestClient, clock: Any
) -> None:
    """The retry of a committed submission runs again under the lock (its row is written last)
    and is refused (its day was closed meanwhile): the first answer is replayed, not the 409."""
    clock.now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    admin = signup(client)
    headers = {**admin.headers, "Idempotency-Key": f"late-{uuid.uuid4()}"}
    body = {"amount": "10.00", "currency": "USD", "spend_date": "2026-11-30"}
    first = client.post("/spends", json=body, headers=headers)
    assert first.status_code == 201, first.text
    closed = client.post("/accounting/periods/2026-11/close", headers=admin.headers)
    assert closed.status_code == 200, closed.text
    assert client.post("/spends", json=body, headers=admin.headers).status_code == 409
    again = client.post("/spends", json=body, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert client.get("/spends", headers=admin.headers).json()["total"] == 1


def test_a_retry_that_runs_again_is_undone_whole(idem_client: TestClient, app: FastAPI) -> None:
    """Its work (a second vendor, and its audit entry) is rolled back with its INSERT of the
    key's row, which the first request holds."""
    admin = signup(idem_client)
    headers = {**admin.headers, "Idempotency-Key": "again"}
    first = idem_client.post("/_test/idempotent-vendors", json={"name": "Once"}, headers=headers)
    again = idem_client.post("/_test/idempotent-vendors", json={"name": "Once"}, headers=headers)
    assert again.json() == first.json()
    assert idem_client.get("/vendors", headers=admin.headers).json()["total"] == 1
    entries = idem_client.get("/audit-logs?action=vendor.created", headers=admin.headers).json()
    assert entries["total"] == 1
    assert idem_client.get("/audit-logs/verify", headers=admin.headers).json()["valid"] is True
