"""API keys: shown once, scoped per route, acting as the company and never as a person."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from spendtrackr.apps.apikeys.models import Scope
from spendtrackr.apps.apikeys.scopes import ROUTES
from spendtrackr.core.config import Settings
from spendtrackr.core.deps import current_settings
from spendtrackr.main import ROUTERS
from tests.conftest import Clock
from tests.factories import Actor, create_user, signup, submit_spend

ALL_SCOPES = [s.value for s in Scope]


def new_key(client: TestClient, admin: Actor, scopes: list[str], **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/api-keys", json={"name": "ERP", "scopes": scopes, **fields}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def test_a_key_reads_the_companys_spends_within_its_scopes(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    spend = submit_spend(client, employee)
    key = new_key(client, admin, ["spends:read"])
    assert key["key"].startswith("stk_")
    assert key["prefix"] == key["key"][:12]
    listed = client.get("/api-keys", headers=admin.headers).json()["items"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0]

    spends = client.get("/spends", headers=bearer(key))
    assert spends.status_code == 200, spends.text
    assert [s["id"] for s in spends.json()["items"]] == [spend["id"]]
    assert client.get(f"/spends/{spend['id']}", headers=bearer(key)).status_code == 200
    assert client.get("/companies/me", headers=bearer(key)).json()["id"] == admin.company_id

    cards = client.get("/cards", headers=bearer(key))
    assert (cards.status_code, cards.json()["code"]) == (403, "insufficient_scope")
    assert "cards:read" in cards.json()["detail"]
    for method, path in (("GET", "/approvals"), ("POST", "/spends"), ("GET", "/users/me")):
        refused = client.request(method, path, headers=bearer(key), json={})
        assert (refused.status_code, refused.json()["code"]) == (403, "api_key_not_allowed")
    assert client.get("/api-keys", headers=bearer(key)).json()["code"] == "api_key_not_allowed"

    # another company's spends stay out of reach
    other = signup(client)
    other_spend = submit_spend(client, other)
    assert client.get(f"/spends/{other_spend['id']}", headers=bearer(key)).status_code == 404
    assert (
        client.get(f"/api-keys/{key['id']}", headers=admin.headers).json()["last_used_at"]
        is not None
    )


def test_a_key_acts_as_itself_in_the_audit_log_and_is_never_a_self(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    spend = submit_spend(client, employee)
    key = new_key(client, admin, ["spends:write", "audit:read"])
    paid = client.post(f"/spends/{spend['id']}/reimburse", headers=bearer(key))
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "reimbursed"
    entries = client.get(
        f"/audit-logs?action=spend.reimbursed&entity_id={spend['id']}", headers=bearer(key)
    ).json()["items"]
    assert [(e["actor_id"], e["metadata"]["actor"]) for e in entries] == [
        (key["id"], f"api_key:{key['id']}")
    ]
    assert finance.id != key["id"]


def test_revoked_expired_and_unknown_keys_are_refused(client: TestClient) -> None:
    admin = signup(client)
    key = new_key(client, admin, ["spends:read"])
    assert client.get("/spends", headers=bearer(key)).status_code == 200
    assert client.delete(f"/api-keys/{key['id']}", headers=admin.headers).status_code == 204
    revoked = client.get("/spends", headers=bearer(key))
    assert (revoked.status_code, revoked.json()["code"]) == (401, "invalid_api_key")
    assert client.get(f"/api-keys/{key['id']}", headers=admin.headers).status_code == 404
    assert client.get("/api-keys", headers=admin.headers).json()["total"] == 0

    unknown = {"Authorization": "Bearer stk_" + "x" * 43}
    assert client.get("/spends", headers=unknown).json()["code"] == "invalid_api_key"
    past = client.post(
        "/api-keys",
        json={"name": "old", "scopes": ["spends:read"], "expires_at": "2020-01-01T00:00:00Z"},
        headers=admin.headers,
    )
    assert (past.status_code, past.json()["code"]) == (422, "invalid_expiry")


def test_a_key_stops_at_its_expiry(client: TestClient, clock: Clock) -> None:
    admin = signup(client)
    clock.now = datetime.now(UTC)
    expires = clock.now + timedelta(hours=1)
    key = new_key(client, admin, ["spends:read"], expires_at=expires.isoformat())
    assert datetime.fromisoformat(key["expires_at"]) == expires
    assert client.get("/spends", headers=bearer(key)).status_code == 200
    clock.now = expires
    expired = client.get("/spends", headers=bearer(key))
    assert (expired.status_code, expired.json()["code"]) == (401, "invalid_api_key")


def test_only_admins_manage_keys_and_scopes_are_checked(client: TestClient) -> None:
    admin = signup(client)
    for role in ("employee", "manager", "finance"):
        someone = create_user(client, admin, role=role)
        response = client.post(
            "/api-keys", json={"name": "x", "scopes": ["spends:read"]}, headers=someone.headers
        )
        assert response.status_code == 403
    for bad in ([], ["spends:delete"], None):
        response = client.post(
            "/api-keys", json={"name": "x", "scopes": bad}, headers=admin.headers
        )
        assert response.status_code == 422, bad


def _routes() -> Iterator[tuple[str, str]]:
    for route in (r for router in ROUTERS for r in router.routes):
        if isinstance(route, APIRoute):
            for method in route.methods - {"HEAD"}:
                yield method, route.path


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)


# Routes that take no user or key at all (their own secrets, signed links, or none).
PUBLIC = {
    "/auth/",
    "/card-network/",
    "/scim/v2/",
    "/events/webhook",
    "/notifications/unsubscribe",
    "/healthz",
    "/readyz",
    "/metrics",
}


def test_every_route_answers_a_key_by_the_scope_table(client: TestClient) -> None:
    """The matrix: each route refuses a key it does not list, refuses a listed route to a key
    without its scope, and lets a key with the scope through to the route itself."""
    admin = signup(client)
    everything = new_key(client, admin, ALL_SCOPES)
    routes = set(_routes())
    assert set(ROUTES) <= routes, set(ROUTES) - routes  # no entry for a route that is gone
    for method, path in sorted(routes):
        if any(path.startswith(p) for p in PUBLIC) or path.startswith("/docs"):
            continue
        response = client.request(method, _concrete(path), headers=bearer(everything), json={})
        code = (
            response.json().get("code")
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )
        assert response.status_code < 500, (method, path, response.text)
        if (method, path) in ROUTES:
            assert code not in ("api_key_not_allowed", "insufficient_scope"), (method, path)
            needed = ROUTES[(method, path)]
            if needed is None:
                continue
            others = new_key(client, admin, [s for s in ALL_SCOPES if s != needed.value])
            refused = client.request(method, _concrete(path), headers=bearer(others), json={})
            assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope"), (
                method,
                path,
            )
        else:
            assert (response.status_code, code) == (403, "api_key_not_allowed"), (method, path)


@pytest.fixture
def strict_limits(app: FastAPI, settings: Settings) -> Iterator[None]:
    limited = settings.model_copy(update={"rate_limit_api_key": "3/minute"})

    async def override() -> Settings:
        return limited

    app.dependency_overrides[current_settings] = override
    yield
    del app.dependency_overrides[current_settings]


def test_each_key_has_its_own_rate_limit(client: TestClient, strict_limits: None) -> None:
    admin = signup(client)
    first = new_key(client, admin, ["spends:read"])
    second = new_key(client, admin, ["spends:read"])
    answers = [client.get("/spends", headers=bearer(first)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert client.get("/spends", headers=bearer(second)).status_code == 200
