from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    Actor,
    approval_over,
    create_policy,
    create_team,
    create_user,
    join_team,
    signup,
    submit_spend,
)
from tests.statements import statements_sent


def _notifications(client: TestClient, actor: Actor) -> list[dict[str, Any]]:
    return list(client.get("/notifications", headers=actor.headers).json()["items"])


def test_whole_flow_two_steps_to_reimbursed(client: TestClient) -> None:
    """Submit -> manager approves -> finance approves -> approved -> reimbursed, with the
    notifications and audit entries every participant should see."""
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(
        client, admin, [approval_over(500, "manager", 10), approval_over(1000, "role:finance", 20)]
    )

    small = submit_spend(client, employee, amount="123.45")
    assert small["status"] == "approved"
    spend = submit_spend(client, employee, amount="1200.00", description="Conference")
    assert spend["status"] == "pending"
    assert [
        (a["step"], a["status"], a["approver_id"], a["approver_role"]) for a in spend["approvals"]
    ] == [
        (1, "pending", manager.id, None),
        (2, "waiting", None, "finance"),
    ]
    assert len(spend["policy_result"]["matched_rules"]) == 2

    # only the open step is actionable, and only by its approver
    queue = client.get("/approvals", headers=manager.headers).json()
    assert [a["spend_id"] for a in queue["items"]] == [spend["id"]]
    assert client.get("/approvals", headers=finance.headers).json()["total"] == 0
    assert [n["kind"] for n in _notifications(client, manager)] == ["approval.requested"]

    step1, step2 = spend["approvals"]
    early = client.post(
        f"/approvals/{step2['id']}/decision", json={"approved": True}, headers=finance.headers
    )
    assert early.status_code == 409
    assert early.json()["code"] == "approval_not_open"
    assert (
        client.post(
            f"/approvals/{step1['id']}/decision", json={"approved": True}, headers=finance.headers
        ).status_code
        == 403
    )
    ok = client.post(
        f"/approvals/{step1['id']}/decision",
        json={"approved": True, "comment": "fine"},
        headers=manager.headers,
    )
    assert ok.status_code == 200
    assert ok.json() == {"status": "ok"}

    after_first = client.get(f"/spends/{spend['id']}", headers=employee.headers).json()
    assert after_first["status"] == "pending"
    assert [a["status"] for a in after_first["approvals"]] == ["approved", "pending"]
    assert after_first["approvals"][0]["decided_by"] == manager.id
    assert after_first["approvals"][0]["comment"] == "fine"
    assert [n["kind"] for n in _notifications(client, finance)] == ["approval.requested"]

    assert (
        client.post(
            f"/approvals/{step2['id']}/decision", json={"approved": True}, headers=finance.headers
        ).status_code
        == 200
    )
    approved = client.get(f"/spends/{spend['id']}", headers=employee.headers).json()
    assert approved["status"] == "approved"
    again = client.post(
        f"/approvals/{step2['id']}/decision", json={"approved": False}, headers=finance.headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_decided"

    reimbursed = client.post(f"/spends/{spend['id']}/reimburse", headers=finance.headers).json()
    assert reimbursed["status"] == "reimbursed"
    assert [n["kind"] for n in _notifications(client, employee)] == [
        "spend.reimbursed",
        "spend.approved",
    ]

    trail = client.get(
        f"/audit-logs?entity_type=spend&entity_id={spend['id']}&limit=50", headers=admin.headers
    ).json()
    assert [e["action"] for e in reversed(trail["items"])] == [
        "spend.created",
        "spend.approved",
        "spend.reimbursed",
    ]
    decisions = client.get("/audit-logs?action=approval.approved", headers=admin.headers).json()
    assert decisions["total"] == 2
    # Each step's opening is in the log too (the guide's `request_approval`): the first on the
    # submitter's behalf, the second by the decision that opened it.
    requested = client.get("/audit-logs?action=approval.requested", headers=admin.headers).json()
    assert [
        (e["entity_id"], e["actor_id"], e["metadata"]["approver_id"], e["metadata"]["step"])
        for e in reversed(requested["items"])
    ] == [(step1["id"], employee.id, manager.id, 1), (step2["id"], manager.id, None, 2)]
    assert client.get("/audit-logs/verify", headers=admin.headers).json()["valid"] is True


def test_rejection_closes_the_spend_and_skips_later_steps(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    create_user(client, admin, role="finance")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(
        client, admin, [approval_over(0, "manager", 1), approval_over(0, "role:finance", 2)]
    )
    spend = submit_spend(client, employee)
    step = spend["approvals"][0]["id"]
    client.post(
        f"/approvals/{step}/decision",
        json={"approved": False, "comment": "no receipt"},
        headers=manager.headers,
    )
    rejected = client.get(f"/spends/{spend['id']}", headers=employee.headers).json()
    assert rejected["status"] == "rejected"
    assert [a["status"] for a in rejected["approvals"]] == ["rejected", "skipped"]
    assert _notifications(client, employee)[0]["message"].endswith("no receipt")
    skipped = client.post(
        f"/approvals/{rejected['approvals'][1]['id']}/decision",
        json={"approved": True},
        headers=admin.headers,
    )
    assert skipped.status_code == 409
    assert skipped.json() == {
        "detail": "This approval step was closed: its spend was decided or changed",
        "code": "already_decided",
    }


def test_block_notifies_the_submitter(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    create_policy(
        client,
        admin,
        [
            {
                "condition": {"amount_gt": 1000},
                "action": {"type": "block", "reason": "Over the hard limit"},
            }
        ],
    )
    spend = submit_spend(client, employee, amount="5000")
    assert spend["status"] == "blocked"
    assert spend["policy_result"]["block_reason"] == "Over the hard limit"
    assert _notifications(client, employee)[0]["kind"] == "spend.blocked"


def test_approver_resolution_falls_back_to_admins(client: TestClient) -> None:
    admin = signup(client)
    second_admin = create_user(client, admin, role="admin")
    employee = create_user(client, admin)  # no manager, no team
    create_policy(client, admin, [approval_over(0, "manager")])
    spend = submit_spend(client, employee)
    step = spend["approvals"][0]
    assert (step["approver_id"], step["approver_role"]) == (None, "admin")
    # an admin's own spend goes to the other admins
    own = submit_spend(client, admin)
    assert own["approvals"][0]["approver_role"] == "admin"
    assert (
        client.post(
            f"/approvals/{own['approvals'][0]['id']}/decision",
            json={"approved": True},
            headers=admin.headers,
        ).status_code
        == 403
    )
    assert client.get("/approvals", headers=admin.headers).json()["total"] == 2  # admins see all
    ok = client.post(
        f"/approvals/{own['approvals'][0]['id']}/decision",
        json={"approved": True},
        headers=second_admin.headers,
    )
    assert ok.status_code == 200


def test_team_manager_and_named_user_approvers(client: TestClient) -> None:
    admin = signup(client)
    team_lead = create_user(client, admin, role="manager")
    controller = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    team = create_team(client, admin, manager_id=team_lead.id)
    create_policy(
        client,
        admin,
        [approval_over(0, "manager", 1), approval_over(0, f"user:{controller.id}", 2)],
    )
    join_team(client, admin, team, employee)
    spend = submit_spend(client, employee, team_id=team["id"])
    assert [a["approver_id"] for a in spend["approvals"]] == [team_lead.id, controller.id]
    # a deactivated named approver's step goes to the admins
    client.delete(f"/admin/users/{controller.id}", headers=admin.headers)
    later = submit_spend(client, employee, team_id=team["id"], amount="7")
    assert later["approvals"][1]["approver_role"] == "admin"


def test_role_approver_excludes_the_submitter(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    create_policy(client, admin, [approval_over(0, "role:finance")])
    own = submit_spend(client, finance)
    assert own["approvals"][0]["approver_role"] == "admin"  # the only finance user is the submitter
    other = create_user(client, admin, role="finance")
    mine = submit_spend(client, finance, amount="8")
    assert mine["approvals"][0]["approver_role"] == "finance"
    assert client.get("/approvals", headers=finance.headers).json()["total"] == 0
    assert client.get("/approvals", headers=other.headers).json()["total"] == 1
    decided = client.post(
        f"/approvals/{mine['approvals'][0]['id']}/decision",
        json={"approved": True},
        headers=finance.headers,
    )
    assert decided.status_code == 403


def test_duplicate_approvers_become_one_step(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(
        client, admin, [approval_over(0, "manager", 1), approval_over(0, f"user:{manager.id}", 2)]
    )
    spend = submit_spend(client, employee)
    assert len(spend["approvals"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"approved": "maybe"},
        # A decision moves money: "yes", "true" or 1 is a client bug, not an approval.
        {"approved": "yes"},
        {"approved": "true"},
        {"approved": 1},
        {"approved": True, "extra": 1},
        {"approved": True, "comment": "x" * 1001},
    ],
)
def test_bad_decision_bodies(client: TestClient, body: dict[str, Any]) -> None:
    admin = signup(client)
    approver = create_user(client, admin, role="admin")
    create_policy(client, admin, [approval_over(0, "role:admin")])
    spend = submit_spend(client, admin)
    response = client.post(
        f"/approvals/{spend['approvals'][0]['id']}/decision", json=body, headers=approver.headers
    )
    assert response.status_code == 422


def test_cross_tenant_and_unknown_approvals_are_404(client: TestClient) -> None:
    admin = signup(client)
    intruder = signup(client)
    create_user(client, admin, role="admin")
    create_policy(client, admin, [approval_over(0, "role:admin")])
    spend = submit_spend(client, admin)
    step = spend["approvals"][0]["id"]
    for approval_id in (step, str(uuid.uuid4())):
        response = client.post(
            f"/approvals/{approval_id}/decision", json={"approved": True}, headers=intruder.headers
        )
        assert response.status_code == 404
        assert response.json()["detail"] == "Approval not found"
    assert client.get("/approvals", headers=intruder.headers).json()["total"] == 0


def test_two_approvers_deciding_at_once_make_one_decision(
    client: TestClient, live_server: str
) -> None:
    admin = signup(client)
    finance = [create_user(client, admin, role="finance") for _ in range(2)]
    employee = create_user(client, admin)
    create_policy(client, admin, [approval_over(0, "role:finance")])
    spends = [submit_spend(client, employee, amount=str(10 + i)) for i in range(5)]

    def decide(args: tuple[str, Actor, bool]) -> int:
        approval_id, actor, approved = args
        with httpx.Client(base_url=live_server, timeout=60) as http:
            return http.post(
                f"/approvals/{approval_id}/decision",
                json={"approved": approved},
                headers=actor.headers,
            ).status_code

    for spend in spends:
        approval_id = spend["approvals"][0]["id"]
        with ThreadPoolExecutor(max_workers=2) as pool:
            statuses = sorted(
                pool.map(
                    decide, [(approval_id, finance[0], True), (approval_id, finance[1], False)]
                )
            )
        assert statuses == [200, 409]
        final = client.get(f"/spends/{spend['id']}", headers=admin.headers).json()
        assert final["status"] in ("approved", "rejected")
        assert (
            final["approvals"][0]["status"]
            == {"approved": "approved", "rejected": "rejected"}[final["status"]]
        )
    entries = client.get(
        "/audit-logs?entity_type=approval&limit=200", headers=admin.headers
    ).json()["items"]
    assert sorted(e["action"] for e in entries).count("approval.requested") == 5
    assert len([e for e in entries if e["action"] != "approval.requested"]) == 5


def test_a_new_spends_steps_start_at_one_without_a_lookup(client: TestClient) -> None:
    """A submission that needs approval numbers its steps from one: the spend was written by the
    same transaction, so nothing looks for earlier steps. An edit that routes it again still
    appends after the steps it has."""
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(500, "manager", 10)])
    with statements_sent(
        lambda s: s.lstrip().upper().startswith("SELECT") and "approval_step" in s
    ) as sent:
        spend = submit_spend(client, employee, amount="800.00")
    assert spend["status"] == "pending"
    assert [(a["step"], a["status"]) for a in spend["approvals"]] == [(1, "pending")]
    assert sent == []
    edited = client.patch(
        f"/spends/{spend['id']}", json={"amount": "900.00"}, headers=employee.headers
    )
    assert edited.status_code == 200, edited.text
    assert [(a["step"], a["status"]) for a in edited.json()["approvals"]] == [
        (1, "skipped"),
        (2, "pending"),
    ]
