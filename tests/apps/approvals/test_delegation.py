"""Out of office: a delegate receives and decides the steps of the person they stand in for;
admins reassign an open step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import Actor, approval_over, create_policy, create_user, signup, submit_spend


def today(days: int = 0) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def queue(client: TestClient, actor: Actor) -> list[str]:
    return [a["spend_id"] for a in client.get("/approvals", headers=actor.headers).json()["items"]]


def kinds(client: TestClient, actor: Actor) -> list[str]:
    return [n["kind"] for n in client.get("/notifications", headers=actor.headers).json()["items"]]


def company(client: TestClient) -> tuple[Actor, Actor, Actor, Actor]:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    peer = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    return admin, manager, peer, employee


def test_a_delegate_receives_and_decides_for_the_person_away(client: TestClient) -> None:
    admin, manager, peer, employee = company(client)
    before = submit_spend(client, employee, amount="300.00")  # open before the absence
    away = client.put(
        "/users/me/delegation",
        json={"delegate_id": peer.id, "starts_on": today(), "ends_on": today(7)},
        headers=manager.headers,
    )
    assert away.status_code == 200, away.text
    assert away.json()["active"] is True
    during = submit_spend(client, employee, amount="400.00")
    assert queue(client, peer) == [during["id"], before["id"]]
    assert kinds(client, peer) == ["approval.requested"]  # the new request went to the delegate
    decided = client.post(
        f"/approvals/{before['approvals'][0]['id']}/decision",
        json={"approved": True},
        headers=peer.headers,
    )
    assert decided.status_code == 200, decided.text
    entry = client.get(
        f"/audit-logs?action=approval.approved&entity_id={before['approvals'][0]['id']}",
        headers=admin.headers,
    ).json()["items"][0]
    assert (entry["actor_id"], entry["metadata"]["on_behalf_of"]) == (peer.id, manager.id)
    # the person away may still decide their own steps
    assert (
        client.post(
            f"/approvals/{during['approvals'][0]['id']}/decision",
            json={"approved": False},
            headers=manager.headers,
        ).status_code
        == 200
    )
    assert client.delete("/users/me/delegation", headers=manager.headers).status_code == 204
    assert client.get("/users/me/delegation", headers=manager.headers).status_code == 404


def test_a_delegate_never_decides_their_own_spend(client: TestClient) -> None:
    admin, manager, _, _ = company(client)
    deputy = create_user(client, admin, role="manager", manager_id=manager.id)
    client.put(
        "/users/me/delegation",
        json={"delegate_id": deputy.id, "starts_on": today(), "ends_on": today(1)},
        headers=manager.headers,
    )
    own = submit_spend(client, deputy, amount="250.00")
    step = own["approvals"][0]
    assert step["approver_id"] == manager.id
    refused = client.post(
        f"/approvals/{step['id']}/decision", json={"approved": True}, headers=deputy.headers
    )
    assert refused.status_code == 403
    assert own["id"] not in queue(client, deputy)
    assert "approval.requested" in kinds(client, manager)  # asked in person, not via the deputy


def test_delegations_are_checked_and_admins_set_anyones(client: TestClient) -> None:
    admin, manager, peer, employee = company(client)
    gone = create_user(client, admin, role="manager")
    client.patch(f"/admin/users/{gone.id}", json={"is_active": False}, headers=admin.headers)
    for body, code in (
        (
            {"delegate_id": manager.id, "starts_on": today(), "ends_on": today(1)},
            "invalid_delegate",
        ),
        ({"delegate_id": gone.id, "starts_on": today(), "ends_on": today(1)}, "invalid_delegate"),
        ({"delegate_id": peer.id, "starts_on": today(3), "ends_on": today(1)}, "invalid_dates"),
        ({"delegate_id": peer.id, "starts_on": today(-9), "ends_on": today(-2)}, "invalid_dates"),
    ):
        response = client.put("/users/me/delegation", json=body, headers=manager.headers)
        assert (response.status_code, response.json()["code"]) == (422, code), body
    later: dict[str, Any] = {"delegate_id": peer.id, "starts_on": today(2), "ends_on": today(5)}
    set_by_admin = client.put(
        f"/admin/users/{manager.id}/delegation", json=later, headers=admin.headers
    )
    assert set_by_admin.status_code == 200
    assert set_by_admin.json()["active"] is False  # not yet
    assert client.get("/users/me/delegation", headers=manager.headers).json()["delegate_id"] == (
        peer.id
    )
    assert (
        client.put(
            f"/admin/users/{manager.id}/delegation", json=later, headers=employee.headers
        ).status_code
        == 403
    )
    other = signup(client)
    assert (
        client.put(
            f"/admin/users/{manager.id}/delegation", json=later, headers=other.headers
        ).status_code
        == 404
    )


def test_admins_reassign_an_open_step(client: TestClient) -> None:
    admin, manager, peer, employee = company(client)
    spend = submit_spend(client, employee, amount="500.00")
    step = spend["approvals"][0]["id"]
    moved = client.post(
        f"/approvals/{step}/reassign", json={"approver_id": peer.id}, headers=admin.headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["approver_id"] == peer.id
    assert queue(client, peer) == [spend["id"]]
    assert queue(client, manager) == []
    assert kinds(client, peer) == ["approval.requested"]
    for approver, code in (
        (employee.id, "invalid_approver"),
        (admin.company_id, "invalid_approver"),
    ):
        response = client.post(
            f"/approvals/{step}/reassign", json={"approver_id": approver}, headers=admin.headers
        )
        assert (response.status_code, response.json()["code"]) == (422, code)
    assert (
        client.post(
            f"/approvals/{step}/reassign", json={"approver_id": peer.id}, headers=manager.headers
        ).status_code
        == 403
    )
    client.post(f"/approvals/{step}/decision", json={"approved": True}, headers=peer.headers)
    closed = client.post(
        f"/approvals/{step}/reassign", json={"approver_id": manager.id}, headers=admin.headers
    )
    assert (closed.status_code, closed.json()["code"]) == (409, "approval_not_open")
    trail = client.get(
        f"/audit-logs?action=approval.reassigned&entity_id={step}", headers=admin.headers
    )
    assert trail.json()["items"][0]["metadata"]["to_approver_id"] == peer.id
