from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import PASSWORD, Actor, create_user, directory_secret, signup, unique_email


def send(client: TestClient, secret: dict[str, str], events: list[dict[str, Any]]) -> Any:
    return client.post("/events/webhook", json=events, headers=secret)


@pytest.fixture
def tenant(client: TestClient) -> tuple[Actor, dict[str, str]]:
    admin = signup(client)
    return admin, directory_secret(client, admin)


def test_provision_update_and_deprovision(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    admin, secret = tenant
    email = unique_email("synced")
    created = send(
        client,
        secret,
        [
            {
                "id": "evt_1",
                "type": "user.created",
                "data": {
                    "email": email,
                    "full_name": "Sam Synced",
                    "role": "manager",
                    "manager_email": admin.email,
                },
            }
        ],
    )
    assert created.status_code == 200
    assert created.json()["status"] == "accepted"
    users = client.get("/admin/users?role=manager", headers=admin.headers).json()["items"]
    assert [(u["email"], u["manager_id"]) for u in users] == [(email, admin.id)]
    # provisioned without a password: cannot log in until the invite is accepted
    assert (
        client.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 401
    )

    send(
        client,
        secret,
        [
            {
                "id": "evt_2",
                "type": "user.updated",
                "data": {"email": email, "full_name": "Sam S.", "role": "finance"},
            }
        ],
    )
    user = client.get(f"/admin/users/{users[0]['id']}", headers=admin.headers).json()
    assert (user["full_name"], user["role"]) == ("Sam S.", "finance")

    send(client, secret, [{"id": "evt_3", "type": "user.deleted", "data": {"email": email}}])
    assert (
        client.get(f"/admin/users/{users[0]['id']}", headers=admin.headers).json()["is_active"]
        is False
    )
    actions = [
        e["action"]
        for e in client.get(
            f"/audit-logs?entity_id={users[0]['id']}", headers=admin.headers
        ).json()["items"]
    ]
    assert actions == ["user.deleted", "user.updated", "auth.login_failed", "user.created"]


def test_deleted_user_tokens_stop_working(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    admin, secret = tenant
    employee = create_user(client, admin)
    assert client.get("/users/me", headers=employee.headers).status_code == 200
    send(
        client,
        secret,
        [{"id": "evt_del", "type": "user.deleted", "data": {"email": employee.email}}],
    )
    assert client.get("/users/me", headers=employee.headers).status_code == 401


def test_replayed_events_are_skipped_and_unknown_types_ignored(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    admin, secret = tenant
    email = unique_email()
    batch = [
        {"id": "evt_a", "type": "user.created", "data": {"email": email, "full_name": "A"}},
        {"id": "evt_b", "type": "group.renamed", "data": {"whatever": True}},
    ]
    first = send(client, secret, batch).json()
    assert (first["applied"], first["ignored"], first["skipped"]) == (1, 1, 0)
    again = send(client, secret, batch).json()
    assert (again["applied"], again["skipped"]) == (0, 2)
    assert client.get("/admin/users", headers=admin.headers).json()["total"] == 2
    # event ids are per company: another tenant may reuse them
    other = signup(client)
    assert (
        send(
            client,
            directory_secret(client, other),
            [
                {
                    "id": "evt_a",
                    "type": "user.created",
                    "data": {"email": unique_email(), "full_name": "B"},
                }
            ],
        ).json()["applied"]
        == 1
    )


def test_event_ids_that_differ_only_in_case_are_two_events(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    admin, secret = tenant
    batch = [
        {
            "id": "evt_Ab",
            "type": "user.created",
            "data": {"email": unique_email(), "full_name": "A"},
        },
        {
            "id": "evt_aB",
            "type": "user.created",
            "data": {"email": unique_email(), "full_name": "B"},
        },
    ]
    result = send(client, secret, batch).json()
    assert (result["applied"], result["skipped"]) == (2, 0)
    assert client.get("/admin/users", headers=admin.headers).json()["total"] == 3


@pytest.mark.parametrize(
    "bad",
    [
        {
            "id": "evt_x",
            "type": "user.created",
            "data": {"email": "not-an-email", "full_name": "X"},
        },
        {"id": "evt_x", "type": "user.created", "data": {"full_name": "X"}},
        {
            "id": "evt_x",
            "type": "user.created",
            "data": {"email": "x@example.com", "full_name": "X", "role": "king"},
        },
        {"id": "evt_x", "type": "user.updated", "data": {"email": "nobody@example.com"}},
        {"id": "", "type": "user.created", "data": {}},
        {"type": "user.created", "data": {}},
        {"id": "evt_x", "type": "user.deleted", "data": {"email": "x@example.com"}, "extra": 1},
    ],
)
def test_a_malformed_event_rejects_the_whole_batch(
    client: TestClient, tenant: tuple[Actor, dict[str, str]], bad: dict[str, Any]
) -> None:
    admin, secret = tenant
    good = {
        "id": "evt_good",
        "type": "user.created",
        "data": {"email": unique_email(), "full_name": "Good"},
    }
    response = send(client, secret, [good, bad])
    assert response.status_code == 422
    assert client.get("/admin/users", headers=admin.headers).json()["total"] == 1  # only the admin
    # nothing was marked processed: the good event applies when resent alone
    assert send(client, secret, [good]).json()["applied"] == 1


def test_bad_secret_is_401_with_the_contract_body(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    events = [{"id": "e", "type": "user.deleted", "data": {"email": "x@example.com"}}]
    for headers in ({}, {"x-webhook-secret": "whsec_wrong"}):
        response = client.post("/events/webhook", json=events, headers=headers)
        assert response.status_code == 401
        assert response.json()["detail"] == "Unauthorized webhook source"


def test_cannot_touch_another_companys_users(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    _admin, secret = tenant
    other = signup(client)
    response = send(
        client, secret, [{"id": "evt_z", "type": "user.deleted", "data": {"email": other.email}}]
    )
    assert response.status_code == 422
    assert client.get("/users/me", headers=other.headers).status_code == 200
    # The same person may be a user here too: this company's own account, nothing shared.
    same_person = send(
        client,
        secret,
        [
            {
                "id": "evt_y",
                "type": "user.created",
                "data": {"email": other.email, "full_name": "Dup"},
            }
        ],
    )
    assert same_person.status_code == 200
    assert client.get("/users/me", headers=other.headers).json()["company_id"] == other.company_id


def test_a_deactivated_manager_rejects_the_batch(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    """The directory naming a manager who has left: 422 naming the event and the manager, and
    nothing of the batch applied (the directory is out of step with SpendTrackr)."""
    admin, secret = tenant
    leaver = create_user(client, admin, role="manager")
    deactivated = client.patch(
        f"/admin/users/{leaver.id}", json={"is_active": False}, headers=admin.headers
    )
    assert deactivated.status_code == 200
    new = {"email": unique_email(), "full_name": "New", "manager_email": leaver.email}
    response = send(client, secret, [{"id": "evt_m", "type": "user.created", "data": new}])
    assert response.status_code == 422
    assert response.json() == {
        "detail": f"event 0: manager {leaver.email} is deactivated",
        "code": "invalid_manager",
    }
    assert client.get("/admin/users?is_active=true", headers=admin.headers).json()["total"] == 1
