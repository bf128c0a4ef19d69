"""The approvals inbox: every way a step can be someone's (named, by role, escalated to them or
their role, standing in for someone away), each step once, never their own, newest first, paged
and counted like the admin's list of every step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from spendtrackr.apps.approvals import service
from spendtrackr.apps.approvals.models import ApprovalStep
from spendtrackr.core import pagination
from spendtrackr.core.db import session_scope
from tests.factories import Actor, approval_over, create_policy, create_user, signup, submit_spend
from tests.statements import statements_sent


def inbox(client: TestClient, actor: Actor, **params: Any) -> dict[str, Any]:
    response = client.get("/approvals", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def escalate(app: FastAPI, step_id: str, **to: Any) -> None:
    with session_scope(app.state.session_factory) as session:
        session.execute(
            update(ApprovalStep).where(ApprovalStep.id == uuid.UUID(step_id)).values(**to)
        )


def test_the_inbox_is_every_way_a_step_is_mine_once_newest_first(
    app: FastAPI, client: TestClient
) -> None:
    admin = signup(client)
    boss = create_user(client, admin, role="manager")
    manager = create_user(client, admin, role="manager", manager_id=boss.id)
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin, manager_id=manager.id)
    other = create_user(client, admin, manager_id=boss.id)
    # Over 5,000 finance decides first, then the manager; over 100 the manager alone.
    create_policy(
        client,
        admin,
        [approval_over(5000, "role:finance", 5), approval_over(100, "manager", 10)],
    )
    spends: dict[str, tuple[str, dict[str, Any]]] = {}  # first step id: (submitter id, spend)
    for who, amount in [
        (employee, "300.00"),  # the manager's
        (employee, "6000.00"),  # finance's (the manager's step waits)
        (other, "400.00"),  # the boss's, to be escalated to finance by role
        (other, "7000.00"),  # finance's, also escalated to finance by role: listed once
        (finance, "8000.00"),  # finance's own spend: never in finance's inbox
        (other, "500.00"),  # the boss's, escalated to the manager by name
        (employee, "350.00"),  # the manager's, while finance stands in for them
    ]:
        spend = submit_spend(client, who, amount=amount)
        spends[spend["approvals"][0]["id"]] = (who.id, spend)
    steps = list(spends)
    escalate(app, steps[2], escalated_to_role="finance")
    escalate(app, steps[3], escalated_to_role="finance")
    escalate(app, steps[5], escalated_to_id=uuid.UUID(manager.id))
    today = datetime.now(UTC).date()
    away = client.put(
        "/users/me/delegation",
        json={
            "delegate_id": finance.id,
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=3)).isoformat(),
        },
        headers=manager.headers,
    )
    assert away.status_code == 200, away.text

    every = inbox(client, admin, limit=200)["items"]
    assert {s["id"] for s in every} == set(steps)
    for actor, expected in [
        (manager, {steps[0], steps[5], steps[6]}),
        (finance, {steps[1], steps[2], steps[3], steps[0], steps[6]}),
        (boss, {steps[2], steps[5]}),  # step 3 is finance's (his report's, but not his step)
        (employee, set()),
    ]:
        mine = inbox(client, actor, limit=200)
        ids = [s["id"] for s in mine["items"]]
        # In the admin's order (newest first), each once, none the caller's own.
        assert ids == [s["id"] for s in every if s["id"] in expected], actor.role
        assert mine["total"] == len(expected)
        assert all(spends[i][0] != actor.id for i in ids)
        paged = [
            s["id"]
            for offset in range(0, len(ids) + 2, 2)
            for s in inbox(client, actor, limit=2, offset=offset)["items"]
        ]
        assert paged == ids
        created = [s["created_at"] for s in mine["items"]]
        assert created == sorted(created, reverse=True)
    # What the reminders count as waiting for someone: theirs, not who they stand in for.
    with session_scope(app.state.session_factory) as session:
        waiting, _ = service.waiting_for(
            session,
            company_id=uuid.UUID(admin.company_id),
            user_id=uuid.UUID(finance.id),
            role="finance",
        )
    assert waiting == 3  # steps 1, 2 and 3: named by role or escalated to the role


def test_an_inbox_past_the_count_cap_says_so(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    for _ in range(5):
        submit_spend(client, employee, amount="300.00")
    monkeypatch.setattr(pagination, "COUNT_CAP", 3)
    monkeypatch.setattr(service, "COUNT_CAP", 3)
    capped = inbox(client, manager, limit=2)
    assert (capped["total"], capped["total_capped"], len(capped["items"])) == (3, True, 2)
    submit_spend(client, employee, amount="300.00")  # a change: the total is counted again
    monkeypatch.setattr(pagination, "COUNT_CAP", 6)
    monkeypatch.setattr(service, "COUNT_CAP", 6)
    exact = inbox(client, manager, limit=2)
    assert (exact["total"], exact["total_capped"]) == (6, False)


def test_each_way_is_read_through_its_own_index(app: FastAPI, client: TestClient) -> None:
    if app.state.engine.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("index hints are MySQL's and MariaDB's")
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    submit_spend(client, employee, amount="300.00")
    with statements_sent(lambda s: "approval_step" in s and "UNION" in s) as sent:
        assert inbox(client, manager)["total"] == 1
    assert len(sent) == 2  # the count, then the page
    for statement in sent:
        for index in (
            "ix_approval_step_company_status_approver",
            "ix_approval_step_company_status_role",
            "ix_approval_step_company_status_escalated_to",
            "ix_approval_step_company_status_escalated_role",
        ):
            assert f"FORCE INDEX ({index})" in statement
    with statements_sent(lambda s: "FROM approval_step" in s) as sent:
        assert inbox(client, admin)["total"] == 1
    assert all("FORCE INDEX (ix_approval_step_company_status_created)" in s for s in sent)


def test_the_inbox_total_is_counted_again_only_after_a_change(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    submit_spend(client, employee, amount="300.00")

    def counted(actor: Actor) -> tuple[int, int]:
        with statements_sent(lambda s: "approval_step" in s and "count(" in s.lower()) as sent:
            total = inbox(client, actor)["total"]
        return total, len(sent)

    for actor in (manager, admin):
        assert counted(actor) == (1, 1)
        assert counted(actor) == (1, 0)  # nothing changed: the total counted before
    submit_spend(client, employee, amount="400.00")
    for actor in (manager, admin):
        assert counted(actor) == (2, 1)
    step = inbox(client, manager)["items"][0]["id"]
    decided = client.post(
        f"/approvals/{step}/decision", json={"approved": True}, headers=manager.headers
    )
    assert decided.status_code == 200, decided.text
    for actor in (manager, admin):
        assert counted(actor) == (1, 1)
