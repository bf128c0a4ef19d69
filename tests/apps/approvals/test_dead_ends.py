"""No step nobody can decide: the approver resolution's fallbacks when a step opens, the
worker's re-routing when its approver goes away, and `needs_attention` when no one but the
submitter is left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.apps.approvals import nudges
from spendtrackr.core.db import utcnow
from tests.factories import Actor, approval_over, create_policy, create_user, signup, submit_spend


def nudge(app: FastAPI, hours: float = 2) -> None:
    """The worker looks at every open step (of every company) as it would after `hours`."""
    while nudges.nudge_due(app.state.session_factory, now=utcnow() + timedelta(hours=hours)):
        pass


def kinds(client: TestClient, actor: Actor) -> list[str]:
    return [n["kind"] for n in client.get("/notifications", headers=actor.headers).json()["items"]]


def step_of(client: TestClient, actor: Actor, spend: dict[str, Any]) -> dict[str, Any]:
    return dict(client.get(f"/spends/{spend['id']}", headers=actor.headers).json()["approvals"][0])


def test_a_sole_admins_own_spend_waits_flagged_until_someone_can_decide(
    client: TestClient, app: FastAPI
) -> None:
    admin = signup(client)
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    spend = submit_spend(client, admin, amount="900.00")
    assert spend["status"] == "pending"
    assert "needs_attention" in spend["flags"]
    assert kinds(client, admin) == ["approval.needs_attention"]
    step = spend["approvals"][0]
    refused = client.post(
        f"/approvals/{step['id']}/decision", json={"approved": True}, headers=admin.headers
    )
    assert refused.status_code == 403

    # A finance lead joins; the worker's next look hands the step over.
    finance = create_user(client, admin, role="finance")
    nudge(app)
    moved = step_of(client, admin, spend)
    assert (moved["approver_id"], moved["approver_role"]) == (None, "finance")
    assert (
        "needs_attention"
        not in client.get(f"/spends/{spend['id']}", headers=admin.headers).json()["flags"]
    )
    assert kinds(client, finance) == ["approval.requested"]
    decided = client.post(
        f"/approvals/{step['id']}/decision", json={"approved": True}, headers=finance.headers
    )
    assert decided.status_code == 200
    rerouted = client.get(
        f"/audit-logs?action=approval.rerouted&entity_id={step['id']}", headers=admin.headers
    ).json()["items"]
    assert rerouted[0]["metadata"]["to"] == {"approver_id": None, "approver_role": "finance"}


def test_finance_is_asked_when_the_only_admin_submits(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    spend = submit_spend(client, admin, amount="900.00")
    assert "needs_attention" not in spend["flags"]
    assert spend["approvals"][0]["approver_role"] == "finance"
    assert kinds(client, finance) == ["approval.requested"]


def test_a_deactivated_approver_or_an_emptied_role_hands_the_step_on(
    client: TestClient, app: FastAPI
) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(
        client, admin, [approval_over(100, "manager", 10), approval_over(100, "role:finance", 20)]
    )
    spend = submit_spend(client, employee, amount="500.00")
    first, second = spend["approvals"]
    assert first["approver_id"] == manager.id
    client.patch(f"/admin/users/{manager.id}", json={"is_active": False}, headers=admin.headers)
    nudge(app)
    assert step_of(client, admin, spend)["approver_role"] == "admin"
    assert kinds(client, admin) == ["approval.requested"]
    client.post(
        f"/approvals/{first['id']}/decision", json={"approved": True}, headers=admin.headers
    )

    # The finance step is open; its only holder becomes an employee.
    client.patch(f"/admin/users/{finance.id}", json={"role": "employee"}, headers=admin.headers)
    nudge(app)
    after = client.get(f"/spends/{spend['id']}", headers=admin.headers).json()["approvals"][1]
    assert (after["id"], after["approver_role"]) == (second["id"], "admin")
    assert (
        client.post(
            f"/approvals/{second['id']}/decision", json={"approved": True}, headers=admin.headers
        ).status_code
        == 200
    )


def test_two_people_standing_in_for_each_other_leave_no_step_stranded(
    client: TestClient,
) -> None:
    admin = signup(client)
    ann = create_user(client, admin, role="manager")
    bob = create_user(client, admin, role="manager")
    ann_report = create_user(client, admin, manager_id=ann.id)
    bob_report = create_user(client, admin, manager_id=bob.id)
    create_policy(client, admin, [approval_over(0, "manager", 10)])
    window = {
        "starts_on": datetime.now(UTC).date().isoformat(),
        "ends_on": (datetime.now(UTC).date() + timedelta(days=3)).isoformat(),
    }
    client.put("/users/me/delegation", json={**window, "delegate_id": bob.id}, headers=ann.headers)
    client.put("/users/me/delegation", json={**window, "delegate_id": ann.id}, headers=bob.headers)
    for submitter, decider in ((ann_report, bob), (bob_report, ann)):
        spend = submit_spend(client, submitter, amount="20.00")
        step = spend["approvals"][0]["id"]
        response = client.post(
            f"/approvals/{step}/decision", json={"approved": True}, headers=decider.headers
        )
        assert response.status_code == 200, response.text


def test_a_team_whose_manager_decides_cannot_be_deleted_from_under_the_step(
    client: TestClient, app: FastAPI
) -> None:
    """The team's manager approves for a member without a manager of their own; the team
    cannot be deleted while its spends exist (409), and if its manager leaves the company, the
    step is handed on."""
    from tests.factories import create_team, join_team

    admin = signup(client)
    lead = create_user(client, admin, role="manager")
    member = create_user(client, admin)
    team = create_team(client, admin, manager_id=lead.id)
    join_team(client, admin, team, member)
    create_policy(client, admin, [approval_over(0, "manager", 10)])
    spend = submit_spend(client, member, amount="40.00", team_id=team["id"])
    assert spend["approvals"][0]["approver_id"] == lead.id
    deleted = client.delete(f"/teams/{team['id']}", headers=admin.headers)
    assert (deleted.status_code, deleted.json()["code"]) == (409, "in_use")
    client.patch(f"/admin/users/{lead.id}", json={"is_active": False}, headers=admin.headers)
    nudge(app)
    assert step_of(client, admin, spend)["approver_role"] == "admin"
