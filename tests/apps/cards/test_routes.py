from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from spendtrackr.apps.cards.models import Card
from spendtrackr.apps.cards.service import luhn_valid
from tests.factories import create_category, create_user, issue_card, signup


def test_issue_shows_the_number_once_and_never_stores_it(client: TestClient, app: FastAPI) -> None:
    admin = signup(client)
    holder = create_user(client, admin)
    card = issue_card(
        client, admin, holder, [{"amount": "500", "interval": "monthly"}], label="Travel"
    )
    number = card["number"]
    assert len(number) == 16
    assert luhn_valid(number)
    assert card["last4"] == number[-4:]
    assert len(card["cvc"]) == 3
    assert card["status"] == "active"
    assert card["spending_limits"] == [{"amount": "500.00", "interval": "monthly"}]
    fetched = client.get(f"/cards/{card['id']}", headers=holder.headers).json()
    assert "number" not in fetched
    assert "cvc" not in fetched
    with app.state.engine.connect() as conn:
        for table in ("card", "audit_log", "idempotency_record", "notification"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            assert number not in str(rows), table


def test_issue_with_idempotency_key_replays_without_the_number(client: TestClient) -> None:
    admin = signup(client)
    holder = create_user(client, admin)
    body = {"user_id": holder.id, "currency": "USD", "spending_limits": []}
    headers = {**admin.headers, "Idempotency-Key": "card-1"}
    first = client.post("/cards", json=body, headers=headers).json()
    replay = client.post("/cards", json=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first["id"]
    assert "number" not in replay.json()
    assert client.get("/cards", headers=admin.headers).json()["total"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"currency": "USD"},
        {"user_id": "nope", "currency": "USD"},
        {"user_id": "{holder}", "currency": "ABC"},
        {
            "user_id": "{holder}",
            "currency": "USD",
            "spending_limits": [{"amount": 10, "interval": "hourly"}],
        },
        {
            "user_id": "{holder}",
            "currency": "USD",
            "spending_limits": [{"amount": 0, "interval": "daily"}],
        },
        {
            "user_id": "{holder}",
            "currency": "USD",
            "spending_limits": [{"amount": -1, "interval": "daily"}],
        },
        {
            "user_id": "{holder}",
            "currency": "USD",
            "spending_limits": [
                {"amount": 100, "interval": "daily"},
                {"amount": 50, "interval": "daily"},
            ],
        },
        {"user_id": "{holder}", "currency": "USD", "allowed_categories": ["x"]},
        {"user_id": "{holder}", "currency": "USD", "allowed_categories": [str(uuid.uuid4())]},
        {"user_id": "{holder}", "currency": "USD", "status": "active"},
        {"user_id": "{holder}", "currency": "USD", "last4": "4242"},
        {"user_id": str(uuid.uuid4()), "currency": "USD"},
    ],
)
def test_bad_card_bodies_are_422(client: TestClient, body: dict[str, Any]) -> None:
    admin = signup(client)
    holder = create_user(client, admin)
    payload = {k: (holder.id if v == "{holder}" else v) for k, v in body.items()}
    assert client.post("/cards", json=payload, headers=admin.headers).status_code == 422
    assert client.get("/cards", headers=admin.headers).json()["total"] == 0


def test_visibility_and_roles(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    holder = create_user(client, admin)
    other = create_user(client, admin, role="manager")
    card = issue_card(client, finance, holder)
    issue_card(client, admin, other)
    assert client.get("/cards", headers=holder.headers).json()["total"] == 1
    assert (
        client.get(f"/cards?user_id={other.id}", headers=holder.headers).json()["total"] == 1
    )  # own only
    assert client.get("/cards", headers=finance.headers).json()["total"] == 2
    assert client.get(f"/cards?user_id={holder.id}", headers=finance.headers).json()["total"] == 1
    assert client.get(f"/cards/{card['id']}", headers=other.headers).status_code == 404
    for actor in (holder, other):
        assert (
            client.post(
                "/cards", json={"user_id": actor.id, "currency": "USD"}, headers=actor.headers
            ).status_code
            == 403
        )
        assert client.post(f"/cards/{card['id']}/freeze", headers=actor.headers).status_code == 403
        assert (
            client.patch(
                f"/cards/{card['id']}", json={"label": "x"}, headers=actor.headers
            ).status_code
            == 403
        )


def test_status_changes_and_cancel_is_final(client: TestClient) -> None:
    admin = signup(client)
    holder = create_user(client, admin)
    card = issue_card(client, admin, holder)
    url = f"/cards/{card['id']}"
    assert client.post(f"{url}/unfreeze", headers=admin.headers).status_code == 409
    assert client.post(f"{url}/freeze", headers=admin.headers).json()["status"] == "frozen"
    assert client.post(f"{url}/freeze", headers=admin.headers).status_code == 409
    assert client.post(f"{url}/unfreeze", headers=admin.headers).json()["status"] == "active"
    assert client.post(f"{url}/cancel", headers=admin.headers).json()["status"] == "cancelled"
    for verb in ("freeze", "unfreeze", "cancel"):
        response = client.post(f"{url}/{verb}", headers=admin.headers)
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"
    assert client.patch(url, json={"label": "again"}, headers=admin.headers).status_code == 409
    kinds = [
        n["kind"] for n in client.get("/notifications", headers=holder.headers).json()["items"]
    ]
    assert kinds == ["card.cancelled", "card.unfrozen", "card.frozen", "card.issued"]
    actions = [
        e["action"]
        for e in client.get(f"/audit-logs?entity_id={card['id']}", headers=admin.headers).json()[
            "items"
        ]
    ]
    assert actions == ["card.cancelled", "card.unfrozen", "card.frozen", "card.issued"]


def test_update_controls(client: TestClient) -> None:
    admin = signup(client)
    holder = create_user(client, admin)
    category = create_category(client, admin)
    card = issue_card(client, admin, holder)
    updated = client.patch(
        f"/cards/{card['id']}",
        json={
            "spending_limits": [{"amount": "25.50", "interval": "daily"}],
            "blocked_categories": [category["id"]],
        },
        headers=admin.headers,
    ).json()
    assert updated["spending_limits"] == [{"amount": "25.50", "interval": "daily"}]
    assert updated["blocked_categories"] == [category["id"]]
    cleared = client.patch(
        f"/cards/{card['id']}", json={"blocked_categories": None}, headers=admin.headers
    ).json()
    assert cleared["blocked_categories"] == []
    assert "card.limits_changed" in [
        n["kind"] for n in client.get("/notifications", headers=holder.headers).json()["items"]
    ]
    foreign = create_category(client, signup(client))
    assert (
        client.patch(
            f"/cards/{card['id']}",
            json={"allowed_categories": [foreign["id"]]},
            headers=admin.headers,
        ).status_code
        == 422
    )


def test_limits_are_in_the_card_currency_minor_units(client: TestClient, app: FastAPI) -> None:
    """As spend amounts are: rounded half up, written plainly ("1E+2" came back as given), and
    refused when they round to nothing (a limit of 0.001 USD declined every purchase)."""
    admin = signup(client)
    holder = create_user(client, admin)
    for currency, given, shown in [
        ("USD", "1e2", "100.00"),
        ("USD", "100.125", "100.13"),
        ("USD", 100.5, "100.50"),
        ("JPY", "1000.5", "1001"),
        ("KWD", "1.0005", "1.001"),
    ]:
        card = issue_card(
            client, admin, holder, [{"amount": given, "interval": "daily"}], currency=currency
        )
        assert card["spending_limits"] == [{"amount": shown, "interval": "daily"}], currency
        fetched = client.get(f"/cards/{card['id']}", headers=admin.headers).json()
        assert fetched["spending_limits"] == card["spending_limits"]
    card = issue_card(client, admin, holder)
    for currency, given in [("USD", "0.001"), ("JPY", "0.4")]:
        refused = client.post(
            "/cards",
            json={
                "user_id": holder.id,
                "currency": currency,
                "spending_limits": [{"amount": given, "interval": "weekly"}],
            },
            headers=admin.headers,
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_limit"
        assert "weekly" in refused.json()["detail"]
    refused = client.patch(
        f"/cards/{card['id']}",
        json={"spending_limits": [{"amount": "0.004", "interval": "daily"}]},
        headers=admin.headers,
    )
    assert refused.status_code == 422, refused.text
    # a limit stored before limits were rounded reads in minor units too
    with Session(app.state.engine) as session:
        stored = session.get(Card, uuid.UUID(card["id"]))
        assert stored is not None
        stored.spending_limits = [{"amount": "1E+2", "interval": "monthly"}]
        session.commit()
    fetched = client.get(f"/cards/{card['id']}", headers=admin.headers).json()
    assert fetched["spending_limits"] == [{"amount": "100.00", "interval": "monthly"}]


def test_a_category_cannot_be_both_allowed_and_blocked(client: TestClient) -> None:
    admin = signup(client)
    holder = create_user(client, admin)
    category = create_category(client, admin)
    both = client.post(
        "/cards",
        json={
            "user_id": holder.id,
            "currency": "USD",
            "allowed_categories": [category["id"]],
            "blocked_categories": [category["id"]],
        },
        headers=admin.headers,
    )
    assert both.status_code == 422
    assert both.json()["code"] == "conflicting_categories"
    card = issue_card(client, admin, holder, allowed_categories=[category["id"]])
    # against what the card already has
    blocked = client.patch(
        f"/cards/{card['id']}", json={"blocked_categories": [category["id"]]}, headers=admin.headers
    )
    assert blocked.status_code == 422
    assert blocked.json()["code"] == "conflicting_categories"
    swapped = client.patch(
        f"/cards/{card['id']}",
        json={"allowed_categories": None, "blocked_categories": [category["id"]]},
        headers=admin.headers,
    )
    assert swapped.status_code == 200
    assert (swapped.json()["allowed_categories"], swapped.json()["blocked_categories"]) == (
        [],
        [category["id"]],
    )


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"label": "x"}),
        ("POST", "/freeze", None),
        ("POST", "/cancel", None),
    ],
)
def test_cross_tenant_card_ids_are_404(
    client: TestClient, method: str, suffix: str, body: Any
) -> None:
    admin = signup(client)
    intruder = signup(client)
    card = issue_card(client, admin, create_user(client, admin))
    assert (
        client.request(
            method, f"/cards/{card['id']}{suffix}", json=body, headers=intruder.headers
        ).status_code
        == 404
    )
    assert client.get(f"/cards/{card['id']}", headers=admin.headers).json()["status"] == "active"


def test_no_card_is_issued_to_a_deactivated_user(client: TestClient) -> None:
    """Every purchase on it would decline (`cardholder_inactive`): 422, and no card."""
    admin = signup(client)
    leaver = create_user(client, admin)
    assert client.delete(f"/admin/users/{leaver.id}", headers=admin.headers).status_code == 200
    response = client.post(
        "/cards",
        json={
            "user_id": leaver.id,
            "currency": "USD",
            "spending_limits": [{"amount": "100", "interval": "monthly"}],
        },
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_user"
    assert "deactivated" in response.json()["detail"]
    assert client.get("/cards", headers=admin.headers).json()["total"] == 0
