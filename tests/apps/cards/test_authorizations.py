from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from spendtrackr.apps.cards import service as cards_service
from spendtrackr.apps.cards.models import Card, CardUsage
from spendtrackr.core.deps import current_time
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


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> Iterator[Clock]:
    fake = Clock(datetime(2026, 6, 15, 12, 0, tzinfo=UTC))  # a Monday

    async def now() -> datetime:
        return fake()

    app.dependency_overrides[current_time] = now
    yield fake
    del app.dependency_overrides[current_time]


@pytest.fixture
def setup(client: TestClient) -> tuple[Actor, Actor, dict[str, str]]:
    admin = signup(client)
    holder = create_user(client, admin)
    return admin, holder, webhook_secret(client, admin)


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


@pytest.mark.parametrize(
    "interval", ["per_authorization", "daily", "weekly", "monthly", "yearly", "all_time"]
)
def test_each_limit_at_its_boundary(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]], clock: Clock, interval: str
) -> None:
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "100.00", "interval": interval}])
    if interval == "per_authorization":
        assert (
            authorize(client, secret, card["id"], "100.01")["decline_reason"]
            == "spending_limit_exceeded:per_authorization"
        )
        assert authorize(client, secret, card["id"], "100.00")["approved"] is True
        assert authorize(client, secret, card["id"], "100.00")["approved"] is True
        return
    assert authorize(client, secret, card["id"], "60.00")["approved"] is True
    over = authorize(client, secret, card["id"], "40.01")
    assert over == {
        "approved": False,
        "decline_reason": f"spending_limit_exceeded:{interval}",
        "spend_id": None,
    }
    assert (
        authorize(client, secret, card["id"], "40.00")["approved"] is True
    )  # exactly at the limit
    assert authorize(client, secret, card["id"], "0.01")["approved"] is False


@pytest.mark.parametrize(
    ("interval", "same_window", "next_window"),
    [
        ("daily", timedelta(hours=11, minutes=59), timedelta(hours=12)),
        ("weekly", timedelta(days=6, hours=11), timedelta(days=7)),  # Monday to Monday
        ("monthly", timedelta(days=15), timedelta(days=16, hours=12)),  # June 15 -> July 1
        ("yearly", timedelta(days=199), timedelta(days=200)),  # -> January 1
    ],
)
def test_limits_roll_over_with_the_calendar(
    client: TestClient,
    setup: tuple[Actor, Actor, dict[str, str]],
    clock: Clock,
    interval: str,
    same_window: timedelta,
    next_window: timedelta,
) -> None:
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "50", "interval": interval}])
    start = clock.now
    assert authorize(client, secret, card["id"], "50")["approved"] is True
    clock.now = start + same_window
    assert authorize(client, secret, card["id"], "1")["approved"] is False
    clock.now = start + next_window
    assert authorize(client, secret, card["id"], "50")["approved"] is True


def test_windows_follow_the_company_time_zone(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]], clock: Clock
) -> None:
    admin, holder, secret = setup
    assert (
        client.patch(
            "/companies/me", json={"timezone": "America/New_York"}, headers=admin.headers
        ).status_code
        == 200
    )
    card = issue_card(client, admin, holder, [{"amount": "50", "interval": "daily"}])
    clock.now = datetime(2026, 6, 16, 3, 0, tzinfo=UTC)  # still June 15 in New York (23:00)
    assert authorize(client, secret, card["id"], "50")["approved"] is True
    clock.now = datetime(2026, 6, 16, 3, 59, tzinfo=UTC)
    assert authorize(client, secret, card["id"], "1")["approved"] is False
    clock.now = datetime(2026, 6, 16, 4, 0, tzinfo=UTC)  # midnight in New York
    assert authorize(client, secret, card["id"], "50")["approved"] is True
    assert (
        client.patch(
            "/companies/me", json={"timezone": "Mars/Olympus"}, headers=admin.headers
        ).status_code
        == 422
    )


def test_a_time_zone_change_inside_a_window_keeps_what_was_spent_since_it_began(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]], clock: Clock
) -> None:
    """The usage row's day began at midnight UTC; after the move to New York the day began at
    04:00 UTC, and the 30.00 approved at 12:00 UTC belongs to both: it must still count."""
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "50", "interval": "daily"}])
    assert authorize(client, secret, card["id"], "30")["approved"] is True  # 12:00 UTC
    assert (
        client.patch(
            "/companies/me", json={"timezone": "America/New_York"}, headers=admin.headers
        ).status_code
        == 200
    )
    clock.now += timedelta(hours=1)
    assert authorize(client, secret, card["id"], "20.01")["approved"] is False
    assert authorize(client, secret, card["id"], "20")["approved"] is True
    assert authorize(client, secret, card["id"], "0.01")["approved"] is False


def test_a_limit_set_later_counts_what_its_window_already_spent(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]], clock: Clock
) -> None:
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "1000", "interval": "monthly"}])
    assert authorize(client, secret, card["id"], "60")["approved"] is True
    clock.now += timedelta(hours=1)
    changed = client.patch(
        f"/cards/{card['id']}",
        json={"spending_limits": [{"amount": "100", "interval": "weekly"}]},
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    assert authorize(client, secret, card["id"], "40.01")["approved"] is False
    assert authorize(client, secret, card["id"], "40")["approved"] is True


def test_a_card_without_a_usage_row_is_added_up_from_its_authorizations(
    client: TestClient, app: FastAPI, setup: tuple[Actor, Actor, dict[str, str]], clock: Clock
) -> None:
    """Cards authorized before usage rows were kept (or whose row is gone) are counted from the
    authorizations; the next authorization, approved or declined, writes their row."""
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "100", "interval": "daily"}])
    assert authorize(client, secret, card["id"], "60")["approved"] is True
    usage = CardUsage.__table__
    this_card = usage.c.card_id == uuid.UUID(card["id"])

    def used() -> tuple[Decimal, Decimal] | None:
        with app.state.engine.connect() as conn:
            row = conn.execute(
                select(usage.c.daily_used, usage.c.all_time_used).where(this_card)
            ).one_or_none()
        return None if row is None else (row.daily_used, row.all_time_used)

    assert used() == (Decimal("60"), Decimal("60"))
    with app.state.engine.begin() as conn:
        conn.execute(usage.delete().where(this_card))
    assert authorize(client, secret, card["id"], "40.01")["approved"] is False
    assert used() == (Decimal("60"), Decimal("60"))
    assert authorize(client, secret, card["id"], "30")["approved"] is True
    assert used() == (Decimal("90"), Decimal("90"))
    assert authorize(client, secret, card["id"], "10.01")["approved"] is False
    assert authorize(client, secret, card["id"], "10")["approved"] is True
    assert used() == (Decimal("100"), Decimal("100"))


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


def test_a_retry_on_a_card_now_at_its_limit_gets_its_first_answer(
    client: TestClient, setup: tuple[Actor, Actor, dict[str, str]]
) -> None:
    """Declines of a card that declined last time do not look for a first answer before
    deciding; a retry of an approval must still get the approval, and record nothing."""
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "10.00", "interval": "daily"}])
    first = authorize(client, secret, card["id"], "10.00", authorization_id="auth_first")
    assert first["approved"] is True
    assert authorize(client, secret, card["id"], "1.00")["approved"] is False
    retried = authorize(client, secret, card["id"], "10.00", authorization_id="auth_first")
    assert retried == first
    declined = client.get(
        "/audit-logs?action=card.authorization_declined", headers=admin.headers
    ).json()
    assert declined["total"] == 1
    assert client.get("/audit-logs/verify", headers=admin.headers).json()["valid"] is True


def test_a_card_at_its_limit_declines_without_waiting_for_its_lock(
    app: FastAPI,
    client: TestClient,
    live_server: str,
    setup: tuple[Actor, Actor, dict[str, str]],
) -> None:
    """Declines of a card at its limit do not queue for the card's row lock. They still share
    the row (the authorization's foreign key check takes a shared lock on it, as each decline in
    flight does), so another transaction sharing it must not hold them up; the exclusive lock an
    authorization used to take for every decline would wait for it."""
    if app.state.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: every transaction takes the database's write lock")
    admin, holder, secret = setup
    card = issue_card(client, admin, holder, [{"amount": "10.00", "interval": "daily"}])
    assert authorize(client, secret, card["id"], "10.00")["approved"] is True
    assert authorize(client, secret, card["id"], "1.00")["approved"] is False
    with (
        app.state.engine.connect() as other,
        httpx.Client(base_url=live_server, timeout=60) as http,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        other.execute(
            select(Card.id).where(Card.id == uuid.UUID(card["id"])).with_for_update(read=True)
        ).one()
        try:
            declined = pool.submit(authorize, http, secret, card["id"], "1.00")
            # Waiting for the lock would take innodb_lock_wait_timeout (50 s by default).
            assert declined.result(timeout=15)["decline_reason"] == "spending_limit_exceeded:daily"
        finally:
            other.rollback()


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


def test_forty_concurrent_authorizations_approve_exactly_ten(
    client: TestClient, live_server: str
) -> None:
    admin = signup(client)
    holder = create_user(client, admin)
    secret = webhook_secret(client, admin)
    card = issue_card(client, admin, holder, [{"amount": "50.00", "interval": "daily"}])

    def attempt(i: int) -> dict[str, Any]:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            response = http.post(
                "/card-network/authorizations",
                json={
                    "card_id": card["id"],
                    "amount": "5.00",
                    "currency": "USD",
                    "merchant_name": "Cafe",
                    "authorization_id": f"burst-{i}",
                },
                headers=secret,
            )
            assert response.status_code == 200, response.text
            return dict(response.json())

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(attempt, range(40)))
    approved = [r for r in results if r["approved"]]
    assert len(approved) == 10
    assert {r["decline_reason"] for r in results if not r["approved"]} == {
        "spending_limit_exceeded:daily"
    }
    spends = client.get(f"/spends?user_id={holder.id}&limit=200", headers=admin.headers).json()
    assert spends["total"] == 10
    assert sum(float(s["amount"]) for s in spends["items"]) == 50.0
