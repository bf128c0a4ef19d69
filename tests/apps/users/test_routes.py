from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from spendtrackr.apps.users.models import User
from tests.factories import PASSWORD, Actor, create_user, signup, unique_email

ADMIN_ROUTES = [
    ("GET", "/admin/users"),
    ("POST", "/admin/users"),
    ("GET", "/admin/users/{id}"),
    ("PATCH", "/admin/users/{id}"),
    ("DELETE", "/admin/users/{id}"),
]


@pytest.mark.parametrize("role", ["employee", "manager", "finance"])
@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_non_admins_are_refused(client: TestClient, role: str, method: str, path: str) -> None:
    admin = signup(client)
    actor = create_user(client, admin, role=role)
    body = (
        {"email": unique_email(), "full_name": "X", "role": "employee"}
        if method == "POST"
        else {"full_name": "Y"}
    )
    response = client.request(
        method,
        path.format(id=admin.id),
        json=body if method in ("POST", "PATCH") else None,
        headers=actor.headers,
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "Insufficient permissions"


def test_create_list_get_update_user(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    created = client.post(
        "/admin/users",
        json={
            "email": unique_email(),
            "full_name": "Eve",
            "role": "employee",
            "password": PASSWORD,
            "manager_id": manager.id,
        },
        headers=admin.headers,
    )
    assert created.status_code == 201
    user = created.json()
    assert user["manager_id"] == manager.id
    assert user["invite_token"] is None
    assert "password" not in user
    assert "password_hash" not in user

    listing = client.get("/admin/users?role=employee", headers=admin.headers).json()
    assert listing["total"] == 1
    assert listing["items"][0]["id"] == user["id"]
    assert client.get("/admin/users", headers=admin.headers).json()["total"] == 3

    updated = client.patch(
        f"/admin/users/{user['id']}",
        json={"role": "finance", "manager_id": None},
        headers=admin.headers,
    )
    assert updated.status_code == 200
    assert updated.json()["role"] == "finance"
    assert updated.json()["manager_id"] is None


def test_email_is_unique_within_a_company_only(client: TestClient) -> None:
    """Another company's email is no conflict (a 409 would tell a tenant who has an account
    elsewhere); the same email twice in one company is."""
    admin = signup(client)
    other = signup(client)
    body = {"email": admin.email.upper(), "full_name": "Dup", "role": "employee"}
    assert client.post("/admin/users", json=body, headers=other.headers).status_code == 201
    again = client.post("/admin/users", json=body, headers=other.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


def test_manager_from_another_company_is_422(client: TestClient) -> None:
    admin = signup(client)
    other = signup(client)
    response = client.post(
        "/admin/users",
        json={
            "email": unique_email(),
            "full_name": "X",
            "role": "employee",
            "manager_id": other.id,
        },
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_manager"


def test_a_deactivated_user_cannot_become_a_manager(client: TestClient) -> None:
    """Their approvals would all go to the admins: the pick is refused, for users and teams
    alike; a user whose manager leaves later keeps them (and falls back to the admins)."""
    admin = signup(client)
    leaver = create_user(client, admin, role="manager")
    report = create_user(client, admin, manager_id=leaver.id)
    assert client.delete(f"/admin/users/{leaver.id}", headers=admin.headers).status_code == 200
    refused = [
        client.post(
            "/admin/users",
            json={
                "email": unique_email(),
                "full_name": "X",
                "role": "employee",
                "manager_id": leaver.id,
            },
            headers=admin.headers,
        ),
        client.patch(
            f"/admin/users/{admin.id}", json={"manager_id": leaver.id}, headers=admin.headers
        ),
        client.post("/teams", json={"name": "T", "manager_id": leaver.id}, headers=admin.headers),
    ]
    for response in refused:
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_manager"
        assert "deactivated" in response.json()["detail"]
    assert client.get("/teams", headers=admin.headers).json()["total"] == 0
    renamed = client.patch(
        f"/admin/users/{report.id}", json={"full_name": "Still reports"}, headers=admin.headers
    )
    assert renamed.status_code == 200
    assert renamed.json()["manager_id"] == leaver.id


def test_managers_cannot_form_a_loop(client: TestClient) -> None:
    admin = signup(client)
    top = create_user(client, admin, role="manager")
    middle = create_user(client, admin, role="manager", manager_id=top.id)
    bottom = create_user(client, admin, manager_id=middle.id)
    for user, manager in ((top, middle), (top, bottom), (middle, bottom)):
        response = client.patch(
            f"/admin/users/{user.id}", json={"manager_id": manager.id}, headers=admin.headers
        )
        assert response.status_code == 422, (user, manager)
        assert response.json()["code"] == "invalid_manager"
    # moving someone within the chain is fine
    moved = client.patch(
        f"/admin/users/{bottom.id}", json={"manager_id": top.id}, headers=admin.headers
    )
    assert moved.status_code == 200
    assert moved.json()["manager_id"] == top.id


def test_user_cannot_manage_themselves(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    response = client.patch(
        f"/admin/users/{employee.id}", json={"manager_id": employee.id}, headers=admin.headers
    )
    assert response.status_code == 422


def test_null_for_a_required_field_is_422_not_500(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    for body in ({"role": None}, {"full_name": None}, {"is_active": None}, {"is_active": "no"}):
        assert (
            client.patch(
                f"/admin/users/{employee.id}", json=body, headers=admin.headers
            ).status_code
            == 422
        )
    assert (
        client.patch(f"/admin/users/{employee.id}", json={}, headers=admin.headers).status_code
        == 422
    )


def test_last_active_admin_is_protected(client: TestClient) -> None:
    admin = signup(client)
    for body in ({"role": "employee"}, {"is_active": False}):
        response = client.patch(f"/admin/users/{admin.id}", json=body, headers=admin.headers)
        assert response.status_code == 409
        assert response.json()["code"] == "last_admin"
    assert client.delete(f"/admin/users/{admin.id}", headers=admin.headers).status_code == 409
    # with a second admin, the first may step down
    second = create_user(client, admin, role="admin")
    assert (
        client.patch(
            f"/admin/users/{admin.id}", json={"role": "finance"}, headers=second.headers
        ).status_code
        == 200
    )
    assert client.delete(f"/admin/users/{second.id}", headers=second.headers).status_code == 409


@pytest.mark.parametrize("change", [{"role": "employee"}, {"is_active": False}, None])
def test_two_admins_removing_each_other_at_once_leave_one(
    app: FastAPI, client: TestClient, live_server: str, change: dict[str, Any] | None
) -> None:
    """Two admins removing each other at once: one wins, the other is refused (409
    `last_admin`, or 401 when the winner's change revoked its token first). Each request used
    to lock its target's row and then wait for the other's: a deadlock MariaDB broke with a 503.
    Both rows are held here until both requests are waiting, so they always meet."""
    if app.state.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: every transaction takes the database's write lock")
    first = signup(client)
    second = create_user(client, first, role="admin")

    def remove(args: tuple[Actor, Actor]) -> int:
        actor, target = args
        with httpx.Client(base_url=live_server, timeout=60) as http:
            url = f"/admin/users/{target.id}"
            if change is None:
                return http.delete(url, headers=actor.headers).status_code
            return http.patch(url, json=change, headers=actor.headers).status_code

    with app.state.engine.connect() as other, ThreadPoolExecutor(max_workers=2) as pool:
        ids = [uuid.UUID(first.id), uuid.UUID(second.id)]
        other.execute(select(User.id).where(User.id.in_(ids)).with_for_update()).all()
        try:
            removals = [pool.submit(remove, pair) for pair in [(first, second), (second, first)]]
            time.sleep(0.5)  # both requests are now waiting for a lock held here
        finally:
            other.rollback()
        statuses = sorted(r.result(timeout=30) for r in removals)
    assert statuses in ([200, 401], [200, 409]), statuses
    for admin in (first, second):
        left = client.get("/admin/users?role=admin&is_active=true", headers=admin.headers)
        if left.status_code == 200:
            assert left.json()["total"] == 1
            break
    else:
        raise AssertionError("no admin is left")


def test_soft_delete_keeps_the_user_readable_and_inactive(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    response = client.delete(f"/admin/users/{employee.id}", headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {"message": "Deleted successfully"}
    fetched = client.get(f"/admin/users/{employee.id}", headers=admin.headers).json()
    assert fetched["is_active"] is False
    assert client.delete(f"/admin/users/{employee.id}", headers=admin.headers).status_code == 404
    assert client.get("/admin/users?is_active=false", headers=admin.headers).json()["total"] == 1
    # reactivation lets them log in again, with a new session only
    assert (
        client.patch(
            f"/admin/users/{employee.id}", json={"is_active": True}, headers=admin.headers
        ).status_code
        == 200
    )
    assert (
        client.post("/auth/login", json={"email": employee.email, "password": PASSWORD}).status_code
        == 200
    )
    assert client.get("/users/me", headers=employee.headers).status_code == 401


def _other_company_user(client: TestClient) -> tuple[Actor, Actor]:
    admin = signup(client)
    intruder = signup(client)
    return admin, intruder


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"full_name": "Hacked"}), ("DELETE", None)]
)
def test_cross_tenant_user_ids_are_404(
    client: TestClient, method: str, body: dict[str, str] | None
) -> None:
    admin, intruder = _other_company_user(client)
    victim = create_user(client, admin)
    response = client.request(
        method, f"/admin/users/{victim.id}", json=body, headers=intruder.headers
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found", "code": "not_found"}
    assert (
        client.get(f"/admin/users/{victim.id}", headers=admin.headers).json()["full_name"]
        != "Hacked"
    )


def test_unknown_and_malformed_ids(client: TestClient) -> None:
    admin = signup(client)
    assert client.get(f"/admin/users/{uuid.uuid4()}", headers=admin.headers).status_code == 404
    malformed = client.get("/admin/users/not-a-uuid", headers=admin.headers)
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "user_id"]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "offset=-1", "role=king", "is_active=maybe"]
)
def test_bad_list_params_are_422(client: TestClient, query: str) -> None:
    admin = signup(client)
    assert client.get(f"/admin/users?{query}", headers=admin.headers).status_code == 422


def test_pagination(client: TestClient) -> None:
    admin = signup(client)
    created = [create_user(client, admin).id for _ in range(3)]
    first = client.get("/admin/users?limit=2&offset=0", headers=admin.headers).json()
    second = client.get("/admin/users?limit=2&offset=2", headers=admin.headers).json()
    assert first["total"] == second["total"] == 4
    ids = [u["id"] for u in first["items"] + second["items"]]
    assert len(set(ids)) == 4
    assert ids[:3] == list(reversed(created))  # newest first


def test_names_of_the_companys_people_for_everyone(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    manager = create_user(client, admin, role="manager")
    stranger = create_user(client, signup(client))
    named = client.get(
        f"/users/names?id={manager.id}&id={stranger.id}&id={manager.id}", headers=employee.headers
    )
    assert named.status_code == 200, named.text
    assert named.json() == {"items": [{"id": manager.id, "full_name": "A manager"}]}

    client.patch(f"/admin/users/{manager.id}", json={"is_active": False}, headers=admin.headers)
    directory = client.get("/users/names", headers=employee.headers).json()["items"]
    assert [p["full_name"] for p in directory] == ["A employee", "Ada Admin"]  # active, by name
    assert client.get("/users/names?id=nope", headers=employee.headers).status_code == 422
    too_many = "&".join(f"id={uuid.uuid4()}" for _ in range(101))
    assert client.get(f"/users/names?{too_many}", headers=employee.headers).status_code == 422
    assert client.get("/users/names").status_code == 401
