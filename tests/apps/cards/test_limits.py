"""Card limits: each window at its boundary, calendar and time-zone rollovers, a card at its
limit, and exactness under concurrency."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from spendtrackr.apps.cards import flows as cards_flows
from spendtrackr.apps.cards import service as cards_service
from spendtrackr.apps.cards.models import Card, CardUsage
from tests.conftest import Clock
from tests.factories import (
    Actor,
    authorize,
    create_user,
    issue_card,
    signup,
    webhook_secret,
)


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


def test_with_its_usage_row_in_place_a_burst_is_decided_by_one_update_each(
    app: FastAPI, client: TestClient, live_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a card has its usage row, approvals take no lock on the card: each counts itself
    with the usage row's conditional UPDATE (`cards.service.reserve`), and the limit holds
    exactly under a burst; a purchase the UPDATE finds over the limit is decided again under
    the card's lock, which declines it."""
    admin = signup(client)
    holder = create_user(client, admin)
    secret = webhook_secret(client, admin)
    card = issue_card(client, admin, holder, [{"amount": "50.00", "interval": "daily"}])
    assert authorize(client, secret, card["id"], "5.00")["approved"] is True  # writes the row
    locked: list[str] = []
    real_lock = cards_service.lock_card_with_usage

    def lock(session: Any, *, company_id: uuid.UUID, card_id: uuid.UUID) -> Any:
        locked.append(str(card_id))
        return real_lock(session, company_id=company_id, card_id=card_id)

    monkeypatch.setattr(cards_service, "lock_card_with_usage", lock)
    assert authorize(client, secret, card["id"], "5.00")["approved"] is True
    assert locked == []  # approved without the card's lock

    def attempt(i: int) -> dict[str, Any]:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            return authorize(http, secret, card["id"], "5.00", authorization_id=f"row-{i}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(attempt, range(40)))
    assert sum(r["approved"] for r in results) == 8  # 10.00 used before, 40.00 left
    with app.state.session_factory() as session:
        row = session.get(CardUsage, uuid.UUID(card["id"]))
        assert row is not None
        assert row.daily_used == Decimal("50.00") == row.all_time_used
    spends = client.get(f"/spends?user_id={holder.id}&limit=200", headers=admin.headers).json()
    assert spends["total"] == 10


def test_an_approval_the_update_finds_over_the_limit_is_undone_and_declined(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when another authorization took the room between the unlocked read and the UPDATE:
    the unlocked decision is made to see room it does not have."""
    admin = signup(client)
    holder = create_user(client, admin)
    secret = webhook_secret(client, admin)
    card = issue_card(client, admin, holder, [{"amount": "50.00", "interval": "daily"}])
    assert authorize(client, secret, card["id"], "45.00")["approved"] is True
    real = cards_flows.decline_reason
    calls: list[str | None] = []

    def stale_first(*args: Any) -> str | None:
        reason = None if not calls else real(*args)
        calls.append(reason)
        return reason

    monkeypatch.setattr(cards_flows, "decline_reason", stale_first)
    result = authorize(client, secret, card["id"], "10.00")
    assert result == {
        "approved": False,
        "decline_reason": "spending_limit_exceeded:daily",
        "spend_id": None,
    }
    assert calls == [None, "spending_limit_exceeded:daily"]  # the UPDATE refused, then locked
    spends = client.get(f"/spends?user_id={holder.id}&limit=200", headers=admin.headers).json()
    assert [s["amount"] for s in spends["items"]] == ["45.00"]  # the undone spend is gone
    history = client.get(f"/cards/{card['id']}/transactions", headers=admin.headers).json()
    assert sorted(t["amount"] for t in history["items"]) == ["10.00", "45.00"]
