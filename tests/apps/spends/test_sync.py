"""Incremental sync: lists paged by `(updated_at, id)` after a cursor, for integrators."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlalchemy.orm import Session

from spendtrackr.apps.spends.models import Spend
from spendtrackr.core.config import Settings
from spendtrackr.core.deps import current_settings
from tests.factories import (
    Actor,
    authorize,
    create_user,
    issue_card,
    signup,
    submit_spend,
    walk_all,
    webhook_secret,
)
from tests.receipts import pdf_receipt

SPENDS = 10_000


@pytest.fixture
def quick_settle(app: FastAPI, settings: Settings) -> Iterator[float]:
    """Rows settle after half a second instead of five, so the walk need not wait long."""
    settle = 0.5
    quick = settings.model_copy(update={"sync_settle_seconds": settle})

    async def override() -> Settings:
        return quick

    app.dependency_overrides[current_settings] = override
    yield settle
    del app.dependency_overrides[current_settings]


def seed_spends(app: FastAPI, owner: Actor, count: int) -> set[str]:
    """`count` spends written straight to the table, changed over the last hour, ten at a
    time in the same microsecond (ties the cursor must break by id)."""
    start = datetime.now(UTC) - timedelta(hours=1)
    rows = []
    for i in range(count):
        at = start + timedelta(microseconds=(i // 10) * 300)
        rows.append(
            {
                "id": uuid.uuid4(),
                "company_id": uuid.UUID(owner.company_id),
                "user_id": uuid.UUID(owner.id),
                "amount": Decimal("12.34"),
                "currency": "USD",
                "base_amount": Decimal("12.34"),
                "base_currency": "USD",
                "fx_rate": Decimal(1),
                "fx_date": date(2026, 11, 1),
                "spend_date": date(2026, 11, 1),
                "description": f"seeded {i}",
                "source": "manual",
                "status": "approved",
                "system_flags": [],
                "policy_flags": [],
                "policy_result": {},
                "created_at": at,
                "updated_at": at,
            }
        )
    # A plain Session: the rows only need to exist for this test (no totals, no audit).
    with Session(app.state.engine) as session, session.begin():
        for chunk in range(0, count, 1000):
            session.execute(insert(Spend), rows[chunk : chunk + 1000])
    return {str(r["id"]) for r in rows}


def walk(
    http: httpx.Client, headers: dict[str, str], cursor: str | None, pages: int | None = None
) -> tuple[list[dict[str, Any]], str | None, bool]:
    """Pages of 200 from `cursor` (or from the start), `pages` of them or until none is left."""
    seen: list[dict[str, Any]] = []
    more = True
    while more and (pages is None or pages > 0):
        query = f"&cursor={cursor}" if cursor else "&updated_since=2000-01-01T00:00:00Z"
        response = http.get(f"/spends?limit=200{query}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] is None
        seen.extend(body["items"])
        cursor, more = body["next_cursor"], body["has_more"]
        pages = None if pages is None else pages - 1
    return seen, cursor, more


def test_a_walk_by_cursor_while_spends_are_written_skips_and_repeats_nothing(
    app: FastAPI, client: TestClient, live_server: str, quick_settle: float
) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    expected = seed_spends(app, employee, SPENDS)
    written: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            while not stop.is_set():
                response = http.post(
                    "/spends",
                    json={
                        "amount": "5.00",
                        "currency": "USD",
                        "spend_date": "2026-12-01",
                        "description": "written during the walk",
                    },
                    headers=employee.headers,
                )
                assert response.status_code == 201, response.text
                written.append(response.json()["id"])

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            first, cursor, _ = walk(http, admin.headers, None, pages=25)
            time.sleep(quick_settle)  # some spends written meanwhile have settled
            second, cursor, _ = walk(http, admin.headers, cursor, pages=25)
            stop.set()
            for thread in threads:
                thread.join()
            time.sleep(quick_settle * 2)  # every spend written has settled
            rest, cursor, more = walk(http, admin.headers, cursor)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert more is False
    assert len(written) > 10, "the writers wrote during the walk"
    ids = [s["id"] for s in first + second + rest]
    assert len(ids) == len(set(ids)), "a spend was listed twice"
    assert set(ids) == expected | set(written), "a spend was skipped"
    # In the order they changed (ties in the database's own order of ids: MariaDB's UUID type
    # sorts otherwise than their text).
    changed = [s["updated_at"] for s in first + second + rest]
    assert changed == sorted(changed)
    # Nothing new since: the last cursor answers an empty page and hands itself back.
    with httpx.Client(base_url=live_server, timeout=30) as http:
        idle = http.get(f"/spends?cursor={cursor}", headers=admin.headers).json()
    assert (idle["items"], idle["next_cursor"], idle["has_more"]) == ([], cursor, False)


def test_updated_since_lists_what_changed_and_offset_pages_are_unchanged(
    client: TestClient, quick_settle: float
) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    old = submit_spend(client, employee, description="old")
    time.sleep(0.05)
    boundary = datetime.now(UTC)
    time.sleep(0.05)
    new = submit_spend(client, employee, description="new")
    paid = client.post(f"/spends/{old['id']}/reimburse", headers=admin.headers)
    assert paid.status_code == 200, paid.text
    time.sleep(quick_settle + 0.1)
    since = boundary.isoformat().replace("+00:00", "Z")
    changed = client.get(f"/spends?updated_since={since}", headers=admin.headers).json()
    assert [s["id"] for s in changed["items"]] == [new["id"], old["id"]]  # in the order changed
    assert changed["has_more"] is False

    classic = client.get("/spends?limit=1&offset=1", headers=admin.headers).json()
    assert (classic["total"], classic["next_cursor"], classic["has_more"]) == (2, None, None)

    for query, code in (
        ("cursor=not-a-cursor", "invalid_cursor"),
        (f"cursor={changed['next_cursor']}&offset=5", "invalid_cursor"),
        ("updated_since=2026-01-01T00:00:00", "validation_error"),  # no time zone
    ):
        response = client.get(f"/spends?{query}", headers=admin.headers)
        assert (response.status_code, response.json()["code"]) == (422, code), query


def test_every_synced_list_pages_by_cursor(client: TestClient, quick_settle: float) -> None:
    """Cards, users, receipts, card authorizations, ledger lines and the audit log: walked two
    at a time, each item once, the same items as the offset pages."""
    admin = signup(client)
    secret = webhook_secret(client, admin)
    people = [create_user(client, admin) for _ in range(3)]
    for person in people:
        card = issue_card(client, admin, person, [{"amount": "100", "interval": "daily"}])
        authorize(client, secret, card["id"], "20.00")
        authorize(client, secret, card["id"], "500.00")  # declined: over the limit
        spend = submit_spend(client, person, amount="30.00")
        uploaded = client.post(
            "/receipts",
            data={"spend_id": spend["id"]},
            files={"file": ("r.pdf", pdf_receipt(), "application/pdf")},
            headers=person.headers,
        )
        assert uploaded.status_code == 201, uploaded.text
    time.sleep(quick_settle + 0.1)
    expected = {
        "/cards": 3,
        "/admin/users": 4,
        "/receipts": 3,
        "/card-authorizations": 6,
        "/ledger-lines": 12,  # a debit and a credit per approved spend, card or not
        "/audit-logs": None,
    }
    for path, count in expected.items():
        ids = walk_all(client, admin, path, limit=2)
        assert len(ids) == len(set(ids)), path
        offset = client.get(f"{path}?limit=200", headers=admin.headers).json()
        assert sorted(ids) == sorted(i["id"] for i in offset["items"]), path
        if count is not None:
            assert len(ids) == count, path
    declined = client.get("/card-authorizations?approved=false", headers=admin.headers).json()
    assert {a["decline_reason"] for a in declined["items"]} == {"spending_limit_exceeded:daily"}
    # a cardholder sees their own card's authorizations and their own receipts only
    mine = client.get("/card-authorizations", headers=people[0].headers).json()
    assert mine["total"] == 2
    assert client.get("/receipts", headers=people[0].headers).json()["total"] == 1
    assert client.get("/ledger-lines", headers=people[0].headers).status_code == 403
