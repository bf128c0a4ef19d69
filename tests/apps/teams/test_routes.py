from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import create_team, create_user, signup


def test_team_lifecycle_with_members(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin)
    team = create_team(client, admin, name="Engineering", manager_id=manager.id)
    assert team["manager_id"] == manager.id

    added = client.post(
        f"/teams/{team['id']}/members", json={"user_id": employee.id}, headers=admin.headers
    )
    assert added.status_code == 201
    again = client.post(
        f"/teams/{team['id']}/members", json={"user_id": employee.id}, headers=admin.headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_member"

    assert client.get(f"/teams/{team['id']}", headers=admin.headers).json()["member_ids"] == [
        employee.id
    ]
    assert client.get("/users/me", headers=employee.headers).json()["team_ids"] == [team["id"]]

    renamed = client.patch(
        f"/teams/{team['id']}", json={"name": "Platform", "manager_id": None}, headers=admin.headers
    )
    assert renamed.json()["name"] == "Platform"
    assert renamed.json()["manager_id"] is None

    assert (
        client.delete(
            f"/teams/{team['id']}/members/{employee.id}", headers=admin.headers
        ).status_code
        == 204
    )
    assert (
        client.delete(
            f"/teams/{team['id']}/members/{employee.id}", headers=admin.headers
        ).status_code
        == 404
    )
    client.post(
        f"/teams/{team['id']}/members", json={"user_id": employee.id}, headers=admin.headers
    )
    assert client.delete(f"/teams/{team['id']}", headers=admin.headers).status_code == 200
    assert client.get(f"/teams/{team['id']}", headers=admin.headers).status_code == 404
    assert client.get("/users/me", headers=employee.headers).json()["team_ids"] == []


def test_team_name_unique_per_company(client: TestClient) -> None:
    admin = signup(client)
    other = signup(client)
    create_team(client, admin, name="Sales")
    assert client.post("/teams", json={"name": "Sales"}, headers=admin.headers).status_code == 409
    assert client.post("/teams", json={"name": "Sales"}, headers=other.headers).status_code == 201


def test_team_manager_and_member_must_be_in_company(client: TestClient) -> None:
    admin = signup(client)
    other = signup(client)
    response = client.post(
        "/teams", json={"name": "X", "manager_id": other.id}, headers=admin.headers
    )
    assert response.status_code == 422
    team = create_team(client, admin)
    assert (
        client.post(
            f"/teams/{team['id']}/members", json={"user_id": other.id}, headers=admin.headers
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "stolen"}),
        ("DELETE", "", None),
        ("POST", "/members", "self"),
        ("DELETE", "/members/{member}", None),
    ],
)
def test_cross_tenant_team_ids_are_404(
    client: TestClient, method: str, suffix: str, body: object
) -> None:
    admin = signup(client)
    intruder = signup(client)
    member = create_user(client, admin)
    team = create_team(client, admin)
    client.post(f"/teams/{team['id']}/members", json={"user_id": member.id}, headers=admin.headers)
    payload = {"user_id": intruder.id} if body == "self" else body
    response = client.request(
        method,
        f"/teams/{team['id']}{suffix.format(member=member.id)}",
        json=payload,
        headers=intruder.headers,
    )
    assert response.status_code == 404
    assert client.get(f"/teams/{team['id']}", headers=admin.headers).json()["member_ids"] == [
        member.id
    ]


@pytest.mark.parametrize("role", ["employee", "manager", "finance"])
def test_teams_are_admin_only(client: TestClient, role: str) -> None:
    admin = signup(client)
    actor = create_user(client, admin, role=role)
    team = create_team(client, admin)
    assert client.get("/teams", headers=actor.headers).status_code == 403
    assert client.post("/teams", json={"name": "x"}, headers=actor.headers).status_code == 403
    assert (
        client.patch(f"/teams/{team['id']}", json={"name": "x"}, headers=actor.headers).status_code
        == 403
    )
    assert client.delete(f"/teams/{team['id']}", headers=actor.headers).status_code == 403
    assert (
        client.post(
            f"/teams/{team['id']}/members", json={"user_id": actor.id}, headers=actor.headers
        ).status_code
        == 403
    )
