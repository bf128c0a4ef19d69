"""A step nobody decides: reminded after the company's reminder hours (then once a day),
escalated after its escalation hours to the approver's manager, else the admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.apps.approvals import nudges
from spendtrackr.core.db import utcnow
from tests.factories import (
    Actor,
    approval_over,
    create_policy,
    create_user,
    signup,
    submit_spend,
)


def kinds(client: TestClient, actor: Actor) -> list[str]:
    return [n["kind"] for n in client.get("/notifications", headers=actor.headers).json()["items"]]


def nudge(app: FastAPI, after: timedelta) -> int:
    return nudges.nudge_due(app.state.session_factory, now=utcnow() + after)


def drain(app: FastAPI) -> None:
    """Steps other tests left open are looked at first (each worker run is for every company)."""
    far = timedelta(days=3650)
    while nudge(app, far):
        pass


def test_a_waiting_step_is_reminded_daily_then_escalated_to_the_managers_manager(
    client: TestClient, app: FastAPI
) -> None:
    drain(app)
    admin = signup(client)
    director = create_user(client, admin, role="manager")
    manager = create_user(client, admin, role="manager", manager_id=director.id)
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    patched = client.patch(
        "/companies/me",
        json={"approval_reminder_hours": 24, "approval_escalation_hours": 72},
        headers=admin.headers,
    )
    assert patched.json()["approval_escalation_hours"] == 72
    spend = submit_spend(client, employee, amount="400.00")
    step = spend["approvals"][0]

    nudge(app, timedelta(hours=2))  # the first look: not yet
    assert kinds(client, manager) == ["approval.requested"]
    nudge(app, timedelta(hours=25))
    assert kinds(client, manager) == ["approval.reminder", "approval.requested"]
    nudge(app, timedelta(hours=30))  # once a day
    assert kinds(client, manager).count("approval.reminder") == 1
    nudge(app, timedelta(hours=49, minutes=5))
    assert kinds(client, manager).count("approval.reminder") == 2

    nudge(app, timedelta(hours=73))
    assert kinds(client, director) == ["approval.escalated"]
    queue = client.get("/approvals", headers=director.headers).json()["items"]
    assert [(a["id"], a["escalated_to_id"]) for a in queue] == [(step["id"], director.id)]
    trail = client.get(
        f"/audit-logs?action=approval.escalated&entity_id={step['id']}", headers=admin.headers
    ).json()["items"]
    assert [(e["metadata"]["to_user_id"], e["metadata"]["after_hours"]) for e in trail] == [
        (director.id, 72)
    ]
    decided = client.post(
        f"/approvals/{step['id']}/decision", json={"approved": True}, headers=director.headers
    )
    assert decided.status_code == 200, decided.text
    assert client.get(f"/spends/{spend['id']}", headers=employee.headers).json()["status"] == (
        "approved"
    )
    nudge(app, timedelta(hours=200))  # a decided step is left alone
    assert kinds(client, manager).count("approval.reminder") == 2


def test_without_a_manager_to_turn_to_the_admins_are_asked(
    client: TestClient, app: FastAPI
) -> None:
    drain(app)
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    create_policy(client, admin, [approval_over(0, "role:finance", 10)])
    client.patch(
        "/companies/me",
        json={"approval_reminder_hours": 2, "approval_escalation_hours": 4},
        headers=admin.headers,
    )
    spend = submit_spend(client, employee, amount="50.00")
    assert nudge(app, timedelta(hours=1, minutes=1)) == 1
    assert nudge(app, timedelta(hours=2, minutes=1)) == 1
    assert kinds(client, finance) == ["approval.reminder", "approval.requested"]
    assert nudge(app, timedelta(hours=4, minutes=1)) == 1
    assert kinds(client, admin) == ["approval.escalated"]
    step: dict[str, Any] = client.get(f"/spends/{spend['id']}", headers=admin.headers).json()[
        "approvals"
    ][0]
    assert (step["escalated_to_id"], step["escalated_to_role"]) == (None, "admin")
    # two workers at the same moment: the step is nudged once
    assert nudge(app, timedelta(hours=4, minutes=1)) == 0


def test_bad_hours_are_refused(client: TestClient) -> None:
    admin = signup(client)
    for body in ({"approval_reminder_hours": 0}, {"approval_escalation_hours": "72"}):
        assert client.patch("/companies/me", json=body, headers=admin.headers).status_code == 422


def test_reminder_and_escalation_emails_say_how_long_it_waited() -> None:
    from babel import Locale

    from spendtrackr.apps.notifications import emails

    for kind, expected in (
        ("approval.reminder", "has waited 25 hours for your decision on $400.00: Taxi."),
        ("approval.escalated", "for 72 hours, so it now comes to you as well"),
    ):
        rendered = emails.render(
            kind=kind,
            message="fallback",
            context={
                "amount": "400.00",
                "currency": "USD",
                "description": "Taxi",
                "spend_date": "2026-11-20",
                "submitter": "Em",
                "waiting_hours": 25 if kind == "approval.reminder" else 72,
            },
            to="x@example.com",
            name="Mo",
            company="Acme",
            entity_type="approval",
            entity_id="00000000-0000-4000-8000-000000000000",
            locale=Locale("en", "US"),
            public_url="https://spend.example.com",
            message_id="<x@example.com>",
        )
        assert expected in rendered.text, rendered.text
        assert expected.split(":")[0].replace("$", "") in rendered.html.replace(
            "<strong>", ""
        ).replace("</strong>", "").replace("$", "")
