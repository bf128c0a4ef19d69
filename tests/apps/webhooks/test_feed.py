"""`GET /events`: the events webhooks send, for a client that polls instead."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.core.config import Settings
from spendtrackr.core.db import utcnow
from spendtrackr.core.deps import current_settings
from tests.conftest import Clock
from tests.factories import Actor, approval_over, create_policy, create_user, submit_spend


def page(client: TestClient, actor: Actor, query: str = "") -> dict[str, Any]:
    response = client.get(f"/events{query}", headers=actor.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_feed_lists_events_in_order_and_resumes_from_a_cursor(
    client: TestClient, admin: Actor
) -> None:
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    spend = submit_spend(client, employee, amount="250.00")
    step = spend["approvals"][0]["id"]
    client.post(f"/approvals/{step}/decision", json={"approved": True}, headers=manager.headers)

    everything = page(client, admin, "?limit=200")
    types = [e["type"] for e in everything["items"]]
    assert types == [
        "user.created",  # the admin, at signup
        "user.created",
        "user.created",
        "spend.created",
        "approval.requested",
        "approval.decided",
        "spend.approved",
    ]
    sequences = [e["sequence"] for e in everything["items"]]
    assert sequences == sorted(sequences)
    decided = everything["items"][5]
    assert decided["data"] == {
        "object": "approval",
        "id": step,
        "spend_id": spend["id"],
        "step": 1,
        "comment": None,
        "decision": "approved",
    }
    assert decided["actor_id"] == manager.id
    assert everything["has_more"] is False

    # Two at a time from the start, then the rest from the cursor: the same events.
    first = page(client, admin, "?limit=2")
    assert first["has_more"] is True
    rest = page(client, admin, f"?after={first['next_cursor']}&limit=200")
    assert [e["id"] for e in first["items"] + rest["items"]] == [
        e["id"] for e in everything["items"]
    ]
    # Polling at the end: nothing new, the same cursor back.
    idle = page(client, admin, f"?after={rest['next_cursor']}")
    assert (idle["items"], idle["next_cursor"], idle["has_more"]) == (
        [],
        rest["next_cursor"],
        False,
    )
    submit_spend(client, employee, amount="5.00")
    assert [e["type"] for e in page(client, admin, f"?after={idle['next_cursor']}")["items"]] == [
        "spend.created",
        "spend.approved",
    ]

    only = page(client, admin, "?types=spend.approved,approval.decided")
    assert [e["type"] for e in only["items"]] == [
        "approval.decided",
        "spend.approved",
        "spend.approved",
    ]


def test_the_feed_is_for_finance_and_admins_of_the_company(
    client: TestClient, admin: Actor
) -> None:
    finance = create_user(client, admin, role="finance")
    assert page(client, finance)["items"][0]["type"] == "user.created"
    for role in ("employee", "manager"):
        someone = create_user(client, admin, role=role)
        assert client.get("/events", headers=someone.headers).status_code == 403
    bad = client.get("/events?types=spend.created,nope", headers=admin.headers)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_types"
    assert client.get("/events?after=-1", headers=admin.headers).status_code == 422


def test_the_feed_reaches_back_as_far_as_it_keeps_events(
    client: TestClient, admin: Actor, clock: Clock, app: FastAPI, settings: Settings
) -> None:
    async def one_day() -> Settings:
        return settings.model_copy(update={"event_retention_days": 1})

    app.dependency_overrides[current_settings] = one_day
    try:
        create_user(client, admin)
        clock.now = utcnow() + timedelta(hours=23)
        assert len(page(client, admin)["items"]) == 2  # the admin and this user
        clock.now = utcnow() + timedelta(hours=25)
        assert page(client, admin)["items"] == []
    finally:
        del app.dependency_overrides[current_settings]


def test_the_feed_starts_at_the_first_event_it_keeps(
    client: TestClient, admin: Actor, app: FastAPI, settings: Settings, clock: Clock
) -> None:
    """Older entries are not read one by one to be filtered out: the feed starts at the first
    entry inside the retention, from any older cursor, and still pages in order from there."""

    async def one_day() -> Settings:
        return settings.model_copy(update={"event_retention_days": 1})

    create_user(client, admin)
    time.sleep(0.05)
    horizon = utcnow()
    time.sleep(0.05)
    create_user(client, admin)
    create_user(client, admin)
    old, kept = page(client, admin)["items"][:2], page(client, admin)["items"][2:]
    assert len(kept) == 2
    app.dependency_overrides[current_settings] = one_day
    clock.now = horizon + timedelta(days=1)  # a day later, only the last two are kept
    try:
        for after in (0, old[0]["sequence"], old[1]["sequence"]):
            first = page(client, admin, f"?after={after}&limit=1")
            assert [e["id"] for e in first["items"]] == [kept[0]["id"]]
            assert first["has_more"] is True
            rest = page(client, admin, f"?after={first['next_cursor']}")
            assert [e["id"] for e in rest["items"]] == [kept[1]["id"]]
            assert rest["has_more"] is False
    finally:
        del app.dependency_overrides[current_settings]
