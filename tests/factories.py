"""Typed helpers that build tenants and users through the public API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Actor:
    id: str
    email: str
    company_id: str
    role: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def signup(
    client: TestClient,
    *,
    company_name: str = "Acme",
    base_currency: str = "USD",
    starter_workspace: bool = False,
) -> Actor:
    """A new company and its admin; empty unless `starter_workspace` (tests build what they
    need, and count from zero)."""
    email = unique_email("admin")
    response = client.post(
        "/auth/signup",
        json={
            "company_name": company_name,
            "email": email,
            "password": PASSWORD,
            "full_name": "Ada Admin",
            "base_currency": base_currency,
            "starter_workspace": starter_workspace,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Actor(
        id=body["user"]["id"],
        email=email,
        company_id=body["company"]["id"],
        role="admin",
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def create_user(
    client: TestClient, admin: Actor, *, role: str = "employee", manager_id: str | None = None
) -> Actor:
    email = unique_email(role)
    body: dict[str, Any] = {
        "email": email,
        "full_name": f"A {role}",
        "role": role,
        "password": PASSWORD,
    }
    if manager_id:
        body["manager_id"] = manager_id
    response = client.post("/admin/users", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    tokens = login(client, email)
    return Actor(
        id=response.json()["id"],
        email=email,
        company_id=admin.company_id,
        role=role,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def create_team(
    client: TestClient, admin: Actor, *, name: str | None = None, manager_id: str | None = None
) -> dict[str, Any]:
    response = client.post(
        "/teams",
        json={"name": name or f"team-{uuid.uuid4().hex[:8]}", "manager_id": manager_id},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_category(
    client: TestClient, admin: Actor, *, name: str | None = None, gl_code: str | None = "6000"
) -> dict[str, Any]:
    response = client.post(
        "/categories",
        json={"name": name or f"cat-{uuid.uuid4().hex[:8]}", "gl_code": gl_code},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_vendor(client: TestClient, admin: Actor, *, name: str | None = None) -> dict[str, Any]:
    response = client.post(
        "/vendors", json={"name": name or f"vendor-{uuid.uuid4().hex[:8]}"}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_policy(
    client: TestClient, admin: Actor, rules: list[dict[str, Any]], *, name: str = "Policy"
) -> dict[str, Any]:
    response = client.post(
        "/policies", json={"name": name, "is_active": True, "rules": rules}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def approval_over(amount: int, approver: str = "manager", priority: int = 10) -> dict[str, Any]:
    return {
        "condition": {"amount_gt": amount},
        "action": {"type": "require_approval", "approver": approver},
        "priority": priority,
    }


def submit_spend(
    client: TestClient, actor: Actor, amount: str = "123.45", **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": amount,
        "currency": "USD",
        "spend_date": "2026-11-20",
        **fields,
    }
    response = client.post("/spends", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def webhook_secret(client: TestClient, admin: Actor) -> dict[str, str]:
    """The card network's secret, as its header."""
    response = client.post("/companies/me/webhook-secret", headers=admin.headers)
    assert response.status_code == 201, response.text
    return {"x-webhook-secret": response.json()["secret"]}


def join_team(client: TestClient, admin: Actor, team: dict[str, Any], member: Actor) -> None:
    response = client.post(
        f"/teams/{team['id']}/members", json={"user_id": member.id}, headers=admin.headers
    )
    assert response.status_code == 201, response.text


def directory_secret(client: TestClient, admin: Actor) -> dict[str, str]:
    """Directory sync's secret, as its header."""
    response = client.post("/companies/me/directory-secret", headers=admin.headers)
    assert response.status_code == 201, response.text
    return {"x-webhook-secret": response.json()["secret"]}


def issue_card(
    client: TestClient,
    admin: Actor,
    holder: Actor,
    limits: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body = {"user_id": holder.id, "currency": "USD", "spending_limits": limits or [], **fields}
    response = client.post("/cards", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def authorize(
    client: TestClient | httpx.Client,
    secret: dict[str, str],
    card_id: str,
    amount: str,
    **extra: Any,
) -> dict[str, Any]:
    """A card network's authorization of a purchase (USD unless `extra` says), answered 200."""
    body = {
        "card_id": card_id,
        "amount": amount,
        "currency": "USD",
        "merchant_name": "Delta Air Lines",
        "authorization_id": f"auth_{uuid.uuid4().hex}",
        **extra,
    }
    response = client.post("/card-network/authorizations", json=body, headers=secret)
    assert response.status_code == 200, response.text
    return dict(response.json())


def set_rates(
    client: TestClient, admin: Actor, on: str, base: str = "USD", **per_unit: str
) -> None:
    """The company's own rates for one day: `EUR="1.08"` says one EUR is 1.08 of `base`."""
    for currency, rate in per_unit.items():
        response = client.post(
            "/exchange-rates",
            json={"date": on, "base": currency, "quote": base, "rate": rate},
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text


def walk_all(client: TestClient, actor: Actor, path: str, *, limit: int) -> list[str]:
    """The ids of every item of `path`, `limit` at a time by cursor, from the first change on."""
    ids: list[str] = []
    response = client.get(
        f"{path}?limit={limit}&updated_since=2000-01-01T00:00:00Z", headers=actor.headers
    )
    while True:
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        ids.extend(item["id"] for item in body["items"])
        if not body["has_more"]:
            return ids
        response = client.get(
            f"{path}?limit={limit}&cursor={body['next_cursor']}", headers=actor.headers
        )
