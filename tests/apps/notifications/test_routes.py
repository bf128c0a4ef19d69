from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.factories import approval_over, create_policy, create_user, signup, submit_spend


def test_list_mark_read_and_read_all(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(0)])
    for amount in ("1", "2", "3"):
        submit_spend(client, employee, amount=amount)
    listing = client.get("/notifications", headers=manager.headers).json()
    assert listing["total"] == 3
    assert all(n["read_at"] is None for n in listing["items"])
    first = listing["items"][0]
    assert first["entity_type"] == "approval"
    assert client.post(f"/notifications/{first['id']}/read", headers=manager.headers).json() == {
        "status": "ok"
    }
    assert (
        client.get("/notifications?unread_only=true", headers=manager.headers).json()["total"] == 2
    )
    assert client.post("/notifications/read-all", headers=manager.headers).json() == {
        "status": "ok",
        "updated": 2,
    }
    assert client.post("/notifications/read-all", headers=manager.headers).json()["updated"] == 0
    assert (
        client.get("/notifications?unread_only=true", headers=manager.headers).json()["total"] == 0
    )


def test_only_the_recipient_sees_or_marks(client: TestClient) -> None:
    admin = signup(client)
    intruder = signup(client)
    manager = create_user(client, admin, role="manager")
    colleague = create_user(client, admin)
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(0)])
    submit_spend(client, employee)
    notification = client.get("/notifications", headers=manager.headers).json()["items"][0]
    for outsider in (colleague, intruder, employee):
        response = client.post(
            f"/notifications/{notification['id']}/read", headers=outsider.headers
        )
        assert response.status_code == 404
        assert response.json()["detail"] == "Notification not found"
        assert client.get("/notifications", headers=outsider.headers).json()["total"] == 0
    assert (
        client.post(f"/notifications/{uuid.uuid4()}/read", headers=manager.headers).status_code
        == 404
    )
    assert (
        client.get("/notifications?unread_only=true", headers=manager.headers).json()["total"] == 1
    )
