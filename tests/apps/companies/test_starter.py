"""Signup gives a company a workspace it can use at once (the original guide's
`initialize_organization_workspace`): categories with GL codes and an example policy, inactive
until an admin turns it on. `starter_workspace: false` opts out."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import create_user, signup, submit_spend


def items(client: TestClient, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(f"{path}?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_a_new_company_starts_with_categories_and_an_inactive_example_policy(
    client: TestClient,
) -> None:
    admin = signup(client, starter_workspace=True)
    categories = {c["name"]: c["gl_code"] for c in items(client, "/categories", admin.headers)}
    assert len(categories) == 10
    assert categories["Travel"] == "6100"
    assert categories["Meals & Entertainment"] == "6200"
    assert all(code and code.isdigit() for code in categories.values())
    (policy,) = items(client, "/policies", admin.headers)
    assert policy["name"] == "Example: approvals and receipts"
    assert policy["is_active"] is False

    # Inactive: nothing is asked of a spend yet.
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    assert submit_spend(client, employee, amount="1500")["status"] == "approved"

    # Turned on, it routes a large spend to the manager and a dinner over 250 too.
    turned_on = client.patch(
        f"/policies/{policy['id']}", json={"is_active": True}, headers=admin.headers
    )
    assert turned_on.status_code == 200, turned_on.text
    large = submit_spend(client, employee, amount="1500")
    assert large["status"] == "pending"
    assert [a["approver_id"] for a in large["approvals"]] == [manager.id]
    meals_id = next(
        c["id"] for c in items(client, "/categories", admin.headers) if c["gl_code"] == "6200"
    )
    dinner = submit_spend(client, employee, amount="300", category_id=meals_id)
    assert dinner["status"] == "pending"
    assert "receipt_missing" in dinner["policy_result"]["flags"]
    assert submit_spend(client, employee, amount="20000")["status"] == "blocked"

    # All of it is in the audit log, by the admin who signed up.
    created = client.get("/audit-logs?action=category.created", headers=admin.headers).json()
    assert created["total"] == 10
    assert {e["actor_id"] for e in created["items"]} == {admin.id}


def test_opting_out_leaves_an_empty_company(client: TestClient) -> None:
    admin = signup(client, starter_workspace=False)
    assert items(client, "/categories", admin.headers) == []
    assert items(client, "/policies", admin.headers) == []


def test_the_flag_must_be_a_boolean(client: TestClient) -> None:
    response = client.post(
        "/auth/signup",
        json={
            "company_name": "Strict",
            "email": "strict@example.com",
            "password": "correct horse battery staple",
            "full_name": "S",
            "starter_workspace": "no",
        },
    )
    assert response.status_code == 422
    assert "starter_workspace" in response.text
