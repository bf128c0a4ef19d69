"""Card authorizations: what is approved, what is declined and why, retries, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from spendtrackr.apps.cards import service as cards_service
from spendtrackr.apps.companies.models import Company
from tests.factories import (
    Actor,
    approval_over,
    authorize,
    create_category,
    create_policy,
    create_user,
    issue_card,
    signup,
    webhook_secret,
)
from tests.statements import statements_sent


def test_approval_creates_a_card_spend(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]]
) -> None:
    admin, holder, secret = setup
    card = issue_card(client, admin, holder)
    result = authorize(client, secret, card["id"], "42.10")
    assert result["approved"] is True
    assert result["decline_reason"] is None
    spend = client.get(f"/spends/{result['spend_id']}", headers=holder.headers).json()
    assert spend["source"] == "card"
    assert spend["card_id"] == card["id"]
    assert spend["user_id"] == holder.id
    assert spend["amount"] == "42.10"
    assert spend["description"] == "Delta Air Lines"
    assert spend["status"] == "approved"


def test_retries_get_the_first_answer_and_charge_once(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]]
) -> None:
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "100", "interval": "all_time"}])
    body = {
        "card_id": card["id"],
        "amount": "60",
        "currency": "USD",
        "merchant_name": "Hotel",
        "authorization_id": "auth_1",
    }
    first = client.post("/card-network/authorizations", json=body, headers=secret).json()
    again = client.post("/card-network/authorizations", json=body, headers=secret).json()
    assert first == again
    assert first["approved"] is True
    assert client.get("/spends", headers=holder.headers).json()["total"] == 1
    # 60 charged once: 40 more still fits
    assert authorize(client, secret, card["id"], "40")["approved"] is True
    assert (
        client.post(
            "/card-network/authorizations", json={**body, "amount": "60.00"}, headers=secret
        ).json()
        == first
    )
    # the same id for another purchase is refused, not answered with the first approval
    other_card = issue_card(client, admin, holder, [{"amount": "100", "interval": "all_time"}])
    for changed in ({"amount": "61"}, {"currency": "EUR"}, {"card_id": other_card["id"]}):
        reused = client.post(
            "/card-network/authorizations", json={**body, **changed}, headers=secret
        )
        assert reused.status_code == 422, reused.text
        assert reused.json()["code"] == "authorization_id_reused"
    assert client.get("/spends", headers=holder.headers).json()["total"] == 2


def test_authorization_ids_that_differ_only_in_case_are_two_purchases(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]]
) -> None:
    """Card networks' ids are case-sensitive (Stripe's are base62): on MySQL/MariaDB a
    case-insensitive column took the second purchase for a retry of the first, recorded nothing
    and charged nothing against the limit."""
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "25", "interval": "all_time"}])
    first = authorize(client, secret, card["id"], "10", authorization_id="iauth_1AbC")
    second = authorize(client, secret, card["id"], "10", authorization_id="iauth_1aBc")
    assert first["approved"] is second["approved"] is True
    assert first["spend_id"] != second["spend_id"]
    assert authorize(client, secret, card["id"], "10", authorization_id="iauth_1AbC") == first
    assert authorize(client, secret, card["id"], "10")["decline_reason"] == (
        "spending_limit_exceeded:all_time"
    )


@pytest.mark.parametrize("same_card", [True, False], ids=["same-card", "another-card"])
def test_an_authorization_id_raced_gets_the_first_answer(
    client: TestClient,
    setup: tuple[Actor, Actor, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    same_card: bool,
) -> None:
    """The same authorization_id sent twice at once passes both retry checks (the first
    decision is not committed yet); the second insert fails on the unique index. That attempt is
    undone whole (its spend and its count against the limit too) and answered with the first
    decision, or, sent for another card, refused: nothing was charged to that card."""
    admin, holder, secret = setup
    limits = [{"amount": "100", "interval": "all_time"}]
    first_card = issue_card(client, admin, holder, limits)
    second_card = first_card if same_card else issue_card(client, admin, holder, limits)
    body = {"amount": "60", "currency": "USD", "merchant_name": "Cafe", "authorization_id": "r1"}
    first = client.post(
        "/card-network/authorizations", json={**body, "card_id": first_card["id"]}, headers=secret
    ).json()
    assert first["approved"] is True

    real_find = cards_service.find_authorization
    calls = []

    def find_after_the_race(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        # The retry check runs before the first decision is visible.
        return None if len(calls) == 1 else real_find(*args, **kwargs)

    monkeypatch.setattr(cards_service, "find_authorization", find_after_the_race)
    second = client.post(
        "/card-network/authorizations", json={**body, "card_id": second_card["id"]}, headers=secret
    )
    if same_card:
        assert second.status_code == 200, second.text
        assert second.json() == first
    else:
        assert second.status_code == 422, second.text
        assert second.json()["code"] == "authorization_id_reused"
    assert len(calls) == 2
    monkeypatch.undo()
    assert client.get("/spends", headers=holder.headers).json()["total"] == 1
    assert client.get("/audit-logs/verify", headers=admin.headers).json()["valid"] is True
    # Charged once, on the first card: 40 more fits on the second (the same card: 100 in all).
    assert authorize(client, secret, second_card["id"], "40")["approved"] is True
    assert authorize(client, secret, first_card["id"], "0.01")["approved"] is (not same_card)


def test_declines(client: TestClient, setup: tuple[Actor, Actor, dict[str, str]]) -> None:
    admin, holder, secret = setup
    travel = create_category(client, admin)
    gambling = create_category(client, admin)
    card = issue_card(client, admin, holder, blocked_categories=[gambling["id"]])
    assert (
        authorize(client, secret, card["id"], "5", currency="EUR")["decline_reason"]
        == "currency_mismatch"
    )
    assert (
        authorize(client, secret, card["id"], "5", category_id=gambling["id"])["decline_reason"]
        == "category_blocked"
    )
    assert authorize(client, secret, card["id"], "5", category_id=travel["id"])["approved"] is True
    only_travel = issue_card(client, admin, holder, allowed_categories=[travel["id"]])
    assert authorize(client, secret, only_travel["id"], "5")["decline_reason"] == "category_blocked"
    assert (
        authorize(client, secret, only_travel["id"], "5", category_id=travel["id"])["approved"]
        is True
    )
    client.post(f"/cards/{card['id']}/freeze", headers=admin.headers)
    assert authorize(client, secret, card["id"], "5")["decline_reason"] == "card_frozen"
    client.post(f"/cards/{card['id']}/cancel", headers=admin.headers)
    assert authorize(client, secret, card["id"], "5")["decline_reason"] == "card_cancelled"
    assert authorize(client, secret, str(uuid.uuid4()), "5")["decline_reason"] == "unknown_card"
    declined = client.get(
        "/audit-logs?action=card.authorization_declined", headers=admin.headers
    ).json()
    assert declined["total"] == 5


def test_a_declining_card_approves_again_once_it_may(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]]
) -> None:
    """A card that declined is checked without its lock first; that must never stick."""
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "10.00", "interval": "daily"}])
    assert authorize(client, secret, card["id"], "8.00")["approved"] is True
    for _ in range(2):  # the second is decided without the lock
        assert (
            authorize(client, secret, card["id"], "5.00")["decline_reason"]
            == "spending_limit_exceeded:daily"
        )
    assert authorize(client, secret, card["id"], "2.00")["approved"] is True  # exactly at it
    raised = client.patch(
        f"/cards/{card['id']}",
        json={"spending_limits": [{"amount": "20.00", "interval": "daily"}]},
        headers=admin.headers,
    )
    assert raised.status_code == 200, raised.text
    assert authorize(client, secret, card["id"], "0.01", currency="EUR")["approved"] is False
    assert authorize(client, secret, card["id"], "5.00")["approved"] is True
    client.post(f"/cards/{card['id']}/freeze", headers=admin.headers)
    assert authorize(client, secret, card["id"], "1.00")["decline_reason"] == "card_frozen"
    client.post(f"/cards/{card['id']}/unfreeze", headers=admin.headers)
    assert authorize(client, secret, card["id"], "5.00")["approved"] is True
    assert (
        authorize(client, secret, card["id"], "0.01")["decline_reason"]
        == "spending_limit_exceeded:daily"
    )
    spends = client.get(f"/spends?user_id={holder.id}", headers=admin.headers).json()
    assert sorted(s["amount"] for s in spends["items"]) == ["2.00", "5.00", "5.00", "8.00"]


def test_a_deactivated_holder_declines_and_a_reactivated_one_approves(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]]
) -> None:
    """The holder's state counts on both paths: the locked one and the unlocked check of a card
    that declined last time, which reads the holder with the card."""
    admin, holder, secret = setup
    card = issue_card(client, admin, holder)

    def set_active(active: bool) -> None:
        response = client.patch(
            f"/admin/users/{holder.id}", json={"is_active": active}, headers=admin.headers
        )
        assert response.status_code == 200, response.text

    set_active(False)
    for _ in range(2):  # the second is decided without the lock
        assert authorize(client, secret, card["id"], "5.00")["decline_reason"] == (
            "cardholder_inactive"
        )
    set_active(True)
    assert authorize(client, secret, card["id"], "5.00")["approved"] is True
    set_active(False)
    assert authorize(client, secret, card["id"], "5.00")["decline_reason"] == (
        "cardholder_inactive"
    )


def test_policies_apply_to_card_spends(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]]
) -> None:
    admin, holder, secret = setup
    create_user(client, admin, role="admin")
    create_policy(
        client,
        admin,
        [
            approval_over(100, "role:admin"),
            {
                "condition": {"amount_gt": 1000, "source_in": ["card"]},
                "action": {"type": "block", "reason": "card cap"},
            },
        ],
    )
    card = issue_card(client, admin, holder)
    assert authorize(client, secret, card["id"], "1000.01")["decline_reason"] == "policy_blocked"
    reviewed = authorize(client, secret, card["id"], "150")
    assert reviewed["approved"] is True  # the purchase goes through; the spend awaits review
    assert (
        client.get(f"/spends/{reviewed['spend_id']}", headers=holder.headers).json()["status"]
        == "pending"
    )


def test_bad_secrets_are_401_and_a_foreign_card_is_unknown(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]]
) -> None:
    admin, holder, secret = setup
    card = issue_card(client, admin, holder)
    body = {
        "card_id": card["id"],
        "amount": "5",
        "currency": "USD",
        "merchant_name": "X",
        "authorization_id": "a1",
    }
    for headers in (
        {},
        {"x-webhook-secret": ""},
        {"x-webhook-secret": secret["x-webhook-secret"][:-1] + "x"},
        {"x-webhook-secret": "whsec_" + "a" * 5000},
    ):
        response = client.post("/card-network/authorizations", json=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["detail"] == "Unauthorized webhook source"
    # Once its own company has used it (its holder and currency are then remembered by the
    # process), the card is still unknown to another company.
    assert authorize(client, secret, card["id"], "5")["approved"] is True
    other = signup(client)
    foreign = authorize(client, webhook_secret(client, other), card["id"], "5")
    assert foreign == {"approved": False, "decline_reason": "unknown_card", "spend_id": None}
    # a rotated secret stops working at once
    webhook_secret(client, admin)
    assert client.post("/card-network/authorizations", json=body, headers=secret).status_code == 401


def test_a_secret_once_accepted_is_checked_again_on_every_path(
    app: FastAPI,
    client: TestClient,
    setup: tuple[Actor, Actor, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process remembers whose secret it accepted, so that a decline on a card at its limit
    checks the secret on the card's read instead of reading the company: a secret rotated out
    is still refused at once, whichever path the authorization takes, and the first refusal
    makes the process forget it (a bad body then gets the 401 before its 422)."""
    admin, holder, old = setup
    card = issue_card(client, admin, holder, [{"amount": "10.00", "interval": "daily"}])
    other_card = issue_card(client, admin, holder)
    assert authorize(client, old, card["id"], "10.00")["approved"]
    assert authorize(client, old, other_card["id"], "1.00", authorization_id="once")["approved"]
    limit = "spending_limit_exceeded:daily"
    assert authorize(client, old, card["id"], "1.00")["decline_reason"] == limit
    with statements_sent(lambda s: "FROM company" in s) as company_reads:
        # decided without the card's lock, the secret checked on the card's read
        assert authorize(client, old, card["id"], "1.00")["decline_reason"] == limit
    assert company_reads == []

    overlap = client.post(
        "/companies/me/webhook-secret",
        json={"previous_expires_in_seconds": 3600},
        headers=admin.headers,
    )
    new = {"x-webhook-secret": overlap.json()["secret"]}

    def sent(headers: dict[str, str], **body: Any) -> int:
        payload = {
            "card_id": card["id"],
            "amount": "1.00",
            "currency": "USD",
            "merchant_name": "X",
            "authorization_id": f"auth_{uuid.uuid4().hex}",
            **body,
        }
        return client.post(
            "/card-network/authorizations", json=payload, headers=headers
        ).status_code

    def overlap_ends_in(delta: timedelta) -> None:
        with Session(app.state.engine) as session:
            company = session.get(Company, uuid.UUID(admin.company_id))
            assert company is not None
            company.previous_webhook_secret_expires_at = datetime.now(UTC) + delta
            session.commit()

    def known_then_expired() -> None:
        """The old secret accepted (the process knows it), then its overlap over."""
        overlap_ends_in(timedelta(hours=1))
        assert sent(old) == 200  # a decline, in the overlap
        overlap_ends_in(-timedelta(seconds=1))

    known_then_expired()
    assert sent(old) == 401  # the declining card's read finds the secret gone
    assert sent(old, amount="-1") == 401  # forgotten: refused before the body is validated
    for body in (
        {"card_id": other_card["id"]},  # approvable: the company is read
        {"card_id": str(uuid.uuid4())},  # unknown
        {"card_id": other_card["id"], "authorization_id": "once"},  # no first answer for it
    ):
        known_then_expired()
        assert sent(old, **body) == 401
    # a declining card whose holder the process has forgotten: refused before "unknown_card"
    known_then_expired()
    monkeypatch.setattr(cards_service, "holder_and_currency", lambda session, **_: None)
    assert sent(old) == 401
    monkeypatch.undo()
    assert authorize(client, new, card["id"], "1.00")["approved"] is False
    assert authorize(client, new, other_card["id"], "1.00")["approved"] is True
    approved = client.get("/card-authorizations?approved=true", headers=admin.headers).json()
    assert len(approved["items"]) == 3


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "5", "currency": "USD", "merchant_name": "X", "authorization_id": "a"},
        {
            "card_id": "x",
            "amount": "5",
            "currency": "USD",
            "merchant_name": "X",
            "authorization_id": "a",
        },
        {
            "card_id": "{card}",
            "amount": "-5",
            "currency": "USD",
            "merchant_name": "X",
            "authorization_id": "a",
        },
        {
            "card_id": "{card}",
            "amount": "5",
            "currency": "US",
            "merchant_name": "X",
            "authorization_id": "a",
        },
        {
            "card_id": "{card}",
            "amount": "5",
            "currency": "USD",
            "merchant_name": "",
            "authorization_id": "a",
        },
        {
            "card_id": "{card}",
            "amount": "5",
            "currency": "USD",
            "merchant_name": "X",
            "authorization_id": "has space",
        },
        {
            "card_id": "{card}",
            "amount": "5",
            "currency": "USD",
            "merchant_name": "X",
            "authorization_id": "a",
            "extra": 1,
        },
    ],
)
def test_bad_authorization_bodies_are_422(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]], body: dict[str, Any]
) -> None:
    admin, holder, secret = setup
    card = issue_card(client, admin, holder)
    payload = {k: (card["id"] if v == "{card}" else v) for k, v in body.items()}
    assert (
        client.post("/card-network/authorizations", json=payload, headers=secret).status_code == 422
    )


def test_the_holder_hears_of_repeated_declines_once_per_reason_and_interval(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]], clock: Any
) -> None:
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "50", "interval": "daily"}])

    def declined() -> list[str]:
        items = client.get("/notifications", headers=holder.headers).json()["items"]
        return [n["message"] for n in items if n["kind"] == "card.declined"]

    for amount in ("60", "70", "80"):  # a merchant retrying, or a card at its limit
        assert authorize(client, secret, card["id"], amount)["approved"] is False
    assert len(declined()) == 1
    assert "60.00 USD" in declined()[0]
    # Another reason is news.
    client.post(f"/cards/{card['id']}/freeze", headers=admin.headers)
    assert authorize(client, secret, card["id"], "10")["decline_reason"] == "card_frozen"
    assert len(declined()) == 2
    # Every decline is in the card's history all the same.
    history = client.get(f"/cards/{card['id']}/transactions", headers=holder.headers).json()
    assert sum(1 for t in history["items"] if t.get("decline_reason")) == 4
    # Ten minutes on, the same reason is told again.
    clock.now += cards_service.DECLINE_NOTICE_INTERVAL
    assert authorize(client, secret, card["id"], "10")["approved"] is False
    assert len(declined()) == 3
