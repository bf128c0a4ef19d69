"""SCIM 2.0 provisioning: an outside conformance checker (scim2-tester) against the served API,
then the requests Okta and Entra ID send: users created, renamed, put in groups (teams) and
deactivated, with the sessions a deactivated user had ended."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.factories import PASSWORD, Actor, create_user, signup

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def scim_token(client: TestClient, admin: Actor) -> dict[str, str]:
    response = client.post("/companies/me/scim-token", headers=admin.headers)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_the_conformance_checker_finds_nothing_wrong(client: TestClient, live_server: str) -> None:
    admin = signup(client)
    headers = scim_token(client, admin)
    with httpx.Client(base_url=f"{live_server}/scim/v2", headers=headers, timeout=30) as http:
        scim = SyncSCIMClient(http)
        scim.discover()
        results = check_server(scim)
    summary = Counter(r.status.name for r in results)
    failed = [
        f"{r.title}: {r.reason}"
        for r in results
        if r.status not in (Status.SUCCESS, Status.SKIPPED)
    ]
    assert failed == [], failed
    assert summary["SUCCESS"] >= 100, summary


def test_okta_and_entra_provision_a_person_through_their_life(client: TestClient) -> None:
    admin = signup(client)
    headers = scim_token(client, admin)
    scim = {**headers, "Content-Type": "application/scim+json"}

    # Okta looks the person up, then creates them.
    found = client.get('/scim/v2/Users?filter=userName eq "dana@acme-scim.com"', headers=scim)
    assert (found.status_code, found.json()["totalResults"]) == (200, 0)
    created = client.post(
        "/scim/v2/Users",
        headers=scim,
        json={
            "schemas": [USER],
            "userName": "dana@acme-scim.com",
            "name": {"givenName": "Dana", "familyName": "Scully"},
            "emails": [{"primary": True, "value": "dana@acme-scim.com", "type": "work"}],
            "active": True,
            "externalId": "00u1abc",
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/scim+json")
    dana_id = created.json()["id"]
    assert created.headers["location"].endswith(f"/scim/v2/Users/{dana_id}")
    person = client.get(f"/admin/users/{dana_id}", headers=admin.headers).json()
    assert (person["email"], person["full_name"], person["is_active"]) == (
        "dana@acme-scim.com",
        "Dana Scully",
        True,
    )
    again = client.post(
        "/scim/v2/Users", headers=scim, json={"schemas": [USER], "userName": "DANA@acme-scim.com"}
    )
    assert (again.status_code, again.json()["scimType"]) == (409, "uniqueness")
    by_external = client.get('/scim/v2/Users?filter=externalId eq "00u1abc"', headers=scim).json()
    assert [r["id"] for r in by_external["Resources"]] == [dana_id]

    # Renamed (Okta: a replace without a path).
    renamed = client.patch(
        f"/scim/v2/Users/{dana_id}",
        headers=scim,
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "value": {"displayName": "Dana K. Scully"}}],
        },
    )
    assert renamed.status_code == 200, renamed.text
    assert client.get(f"/admin/users/{dana_id}", headers=admin.headers).json()["full_name"] == (
        "Dana K. Scully"
    )

    # Put in a group, which is a team (Okta push groups; Entra's member add).
    group = client.post(
        "/scim/v2/Groups",
        headers=scim,
        json={"schemas": [GROUP], "displayName": "Field Office", "members": []},
    )
    assert group.status_code == 201, group.text
    team_id = group.json()["id"]
    added = client.patch(
        f"/scim/v2/Groups/{team_id}",
        headers=scim,
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": dana_id}]}],
        },
    )
    assert added.status_code == 200, added.text
    team = client.get(f"/teams/{team_id}", headers=admin.headers).json()
    assert (team["name"], team["member_ids"]) == ("Field Office", [dana_id])
    removed = client.patch(
        f"/scim/v2/Groups/{team_id}",
        headers=scim,
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "remove", "path": f'members[value eq "{dana_id}"]'}],
        },
    )
    assert removed.status_code == 200, removed.text
    assert client.get(f"/teams/{team_id}", headers=admin.headers).json()["member_ids"] == []

    # Deactivated (Entra sends the boolean as a string).
    off = client.patch(
        f"/scim/v2/Users/{dana_id}",
        headers=scim,
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        },
    )
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    assert client.get(f"/admin/users/{dana_id}", headers=admin.headers).json()["is_active"] is False

    actions = [
        e["action"]
        for e in client.get(
            f"/audit-logs?entity_id={dana_id}&limit=50", headers=admin.headers
        ).json()["items"]
    ]
    assert "user.created" in actions
    assert actions.count("user.updated") >= 2


def test_a_person_who_had_an_account_is_taken_over_and_loses_access_when_deactivated(
    client: TestClient,
) -> None:
    admin = signup(client)
    headers = scim_token(client, admin)
    employee = create_user(client, admin)
    assert client.get("/users/me", headers=employee.headers).status_code == 200
    adopted = client.post(
        "/scim/v2/Users", headers=headers, json={"schemas": [USER], "userName": employee.email}
    )
    assert adopted.status_code == 201, adopted.text
    assert adopted.json()["id"] == employee.id
    off = client.patch(
        f"/scim/v2/Users/{employee.id}",
        headers=headers,
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert off.status_code == 200, off.text
    assert client.get("/users/me", headers=employee.headers).status_code == 401  # sessions ended
    login = client.post("/auth/login", json={"email": employee.email, "password": PASSWORD})
    assert login.status_code == 401
    gone = client.delete(f"/scim/v2/Users/{employee.id}", headers=headers)
    assert gone.status_code == 204
    assert client.get(f"/scim/v2/Users/{employee.id}", headers=headers).status_code == 404


def test_tokens_are_per_company_and_errors_are_scim_errors(client: TestClient) -> None:
    mine, theirs = signup(client), signup(client)
    my_token, their_token = scim_token(client, mine), scim_token(client, theirs)
    made = client.post(
        "/scim/v2/Users",
        headers=my_token,
        json={"schemas": [USER], "userName": "eve@acme-scim.com"},
    ).json()
    missing = client.get(f"/scim/v2/Users/{made['id']}", headers=their_token)
    assert missing.status_code == 404
    assert missing.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    for bad in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": mine.headers["Authorization"]},
    ):
        answer = client.get("/scim/v2/Users", headers=bad)
        assert (answer.status_code, answer.json()["status"]) == (401, "401")
    rotated = scim_token(client, mine)
    assert client.get("/scim/v2/Users", headers=my_token).status_code == 401  # the old one
    assert client.get("/scim/v2/Users", headers=rotated).status_code == 200
    employee = create_user(client, mine)
    assert client.post("/companies/me/scim-token", headers=employee.headers).status_code == 403
    bad_filter = client.get('/scim/v2/Users?filter=title co "x"', headers=rotated)
    assert (bad_filter.status_code, bad_filter.json()["scimType"]) == (400, "invalidFilter")
    listed: Any = client.get("/scim/v2/Users?startIndex=1&count=1", headers=rotated).json()
    assert (listed["totalResults"], listed["itemsPerPage"]) == (1, 1)
