"""Directory events as the original backend guide sends them: no `id`, role assignment and team
membership events. A retried delivery applies once; a change undone and made again applies each
time; the replay window bounds how long content is remembered."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Clock
from tests.factories import Actor, directory_secret, signup, unique_email


def send(client: TestClient, secret: dict[str, str], events: list[dict[str, Any]]) -> Any:
    response = client.post("/events/webhook", json=events, headers=secret)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def tenant(client: TestClient) -> tuple[Actor, dict[str, str]]:
    admin = signup(client)
    return admin, directory_secret(client, admin)


def user_named(client: TestClient, admin: Actor, email: str) -> dict[str, Any]:
    users = client.get("/admin/users?limit=100", headers=admin.headers).json()["items"]
    return next(u for u in users if u["email"] == email)


def counts(result: dict[str, Any]) -> tuple[int, int, int]:
    return result["applied"], result["skipped"], result["ignored"]


def test_the_guides_events_without_ids_apply_once_per_delivery(
    client: TestClient, tenant: tuple[Actor, dict[str, str]], clock: Clock
) -> None:
    admin, secret = tenant
    email = unique_email("jane")
    delivery = [
        {
            "type": "user.created",
            "data": {"email": email, "full_name": "Jane Doe", "role": "employee"},
        },
        {"type": "user.role_assigned", "data": {"email": email, "role": "manager"}},
        {"type": "membership.added", "data": {"email": email, "team": "Engineering"}},
    ]
    assert counts(send(client, secret, delivery)) == (3, 0, 0)
    jane = user_named(client, admin, email)
    assert jane["role"] == "manager"
    teams = client.get("/teams", headers=admin.headers).json()["items"]
    assert [t["name"] for t in teams] == ["Engineering"]
    assert teams[0]["member_ids"] == [jane["id"]]

    # The provider did not see our 200 and delivers the same batch again, a minute later.
    clock.now += timedelta(minutes=1)
    assert counts(send(client, secret, delivery)) == (0, 3, 0)
    assert client.get("/admin/users", headers=admin.headers).json()["total"] == 2
    actions = [
        e["action"]
        for e in client.get(
            f"/audit-logs?entity_id={teams[0]['id']}", headers=admin.headers
        ).json()["items"]
    ]
    assert actions == ["team.member_added", "team.created"]

    # Leaving the team, then an identical second removal: the second is a replay.
    removed = [{"type": "membership.removed", "data": {"email": email, "team": "Engineering"}}]
    assert counts(send(client, secret, removed)) == (1, 0, 0)
    assert counts(send(client, secret, removed)) == (0, 1, 0)
    assert client.get(f"/teams/{teams[0]['id']}", headers=admin.headers).json()["member_ids"] == []


def test_a_change_undone_and_made_again_applies_each_time(
    client: TestClient, tenant: tuple[Actor, dict[str, str]], clock: Clock
) -> None:
    admin, secret = tenant
    email = unique_email()
    created = {"type": "user.created", "data": {"email": email, "full_name": "Toggle"}}
    to_finance = {"type": "user.updated", "data": {"email": email, "role": "finance"}}
    to_manager = {"type": "user.updated", "data": {"email": email, "role": "manager"}}
    send(client, secret, [created])
    for event, role in ((to_finance, "finance"), (to_manager, "manager"), (to_finance, "finance")):
        clock.now += timedelta(minutes=5)
        assert counts(send(client, secret, [event])) == (1, 0, 0)
        assert user_named(client, admin, email)["role"] == role
    # the last one, retried at once, is a replay
    assert counts(send(client, secret, [to_finance])) == (0, 1, 0)


def test_content_is_remembered_for_the_replay_window_only(
    client: TestClient, tenant: tuple[Actor, dict[str, str]], clock: Clock
) -> None:
    admin, secret = tenant
    email = unique_email()
    send(client, secret, [{"type": "user.created", "data": {"email": email, "full_name": "W"}}])
    # Deliveries are apart in time (the history of a person is ordered by when each applied).
    clock.now += timedelta(minutes=1)
    deleted = [{"type": "user.deleted", "data": {"email": email}}]
    assert counts(send(client, secret, deleted)) == (1, 0, 0)
    reactivate = {"email": email, "is_active": True}
    clock.now += timedelta(hours=23)
    assert counts(send(client, secret, deleted)) == (0, 1, 0)
    # Reactivated by hand (not by the directory), then the directory deletes again a day later.
    user = user_named(client, admin, email)
    patched = client.patch(
        f"/admin/users/{user['id']}", json={"is_active": True}, headers=admin.headers
    )
    assert patched.status_code == 200, reactivate
    clock.now += timedelta(hours=2)
    assert counts(send(client, secret, deleted)) == (1, 0, 0)
    assert user_named(client, admin, email)["is_active"] is False


def test_occurred_at_tells_two_identical_changes_apart(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    admin, secret = tenant
    email = unique_email()
    send(client, secret, [{"type": "user.created", "data": {"email": email, "full_name": "T"}}])
    event = {"type": "user.deleted", "data": {"email": email}, "timestamp": "2026-06-01T10:00:00Z"}
    assert counts(send(client, secret, [event])) == (1, 0, 0)
    user = user_named(client, admin, email)
    client.patch(f"/admin/users/{user['id']}", json={"is_active": True}, headers=admin.headers)
    assert counts(send(client, secret, [event])) == (0, 1, 0)
    later = {**event, "timestamp": "2026-06-02T10:00:00Z"}
    assert counts(send(client, secret, [later])) == (1, 0, 0)


def test_membership_events_name_teams_and_change_nothing_twice(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    admin, secret = tenant
    email = unique_email()
    team = client.post("/teams", json={"name": "Sales"}, headers=admin.headers).json()
    send(
        client,
        secret,
        [
            {"id": "u1", "type": "user.created", "data": {"email": email, "full_name": "S"}},
            {
                "id": "m1",
                "type": "team.member_added",
                "data": {"email": email, "team_name": "Sales"},
            },
            {"id": "m2", "type": "membership.added", "data": {"email": email, "group": "Sales"}},
            {"id": "m3", "type": "membership.removed", "data": {"email": email, "team": "Nowhere"}},
        ],
    )
    assert len(client.get(f"/teams/{team['id']}", headers=admin.headers).json()["member_ids"]) == 1
    assert client.get("/teams", headers=admin.headers).json()["total"] == 1  # no "Nowhere"
    bad = client.post(
        "/events/webhook",
        json=[{"type": "membership.added", "data": {"email": email}}],
        headers=secret,
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_event"
    assert "data.team" in bad.json()["detail"]


def test_role_assignment_may_not_grant_admin(
    client: TestClient, tenant: tuple[Actor, dict[str, str]]
) -> None:
    admin, secret = tenant
    email = unique_email()
    send(client, secret, [{"type": "user.created", "data": {"email": email, "full_name": "R"}}])
    response = client.post(
        "/events/webhook",
        json=[{"type": "role.assigned", "data": {"email": email, "role": "admin"}}],
        headers=secret,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "directory_admin_forbidden"
    assert user_named(client, admin, email)["role"] == "employee"
