from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import create_user, signup


def test_read_and_update_company(client: TestClient) -> None:
    admin = signup(client, company_name="Initech")
    employee = create_user(client, admin)
    assert client.get("/companies/me", headers=employee.headers).json()["name"] == "Initech"
    updated = client.patch(
        "/companies/me", json={"name": "Initrode", "base_currency": "gbp"}, headers=admin.headers
    )
    assert updated.status_code == 200
    assert updated.json()["base_currency"] == "GBP"
    assert (
        client.patch("/companies/me", json={"name": "x"}, headers=employee.headers).status_code
        == 403
    )
    assert (
        client.patch(
            "/companies/me", json={"base_currency": "ZZZ"}, headers=admin.headers
        ).status_code
        == 422
    )
    assert (
        client.patch(
            "/companies/me", json={"id": admin.company_id}, headers=admin.headers
        ).status_code
        == 422
    )


def test_webhook_secret_rotation_shows_once_and_stores_only_a_hash(client: TestClient) -> None:
    admin = signup(client)
    first = client.post("/companies/me/webhook-secret", headers=admin.headers)
    assert first.status_code == 201
    second = client.post("/companies/me/webhook-secret", headers=admin.headers)
    assert first.json()["secret"] != second.json()["secret"]
    assert first.json()["secret"].startswith("whsec_")
    assert "secret" not in str(client.get("/companies/me", headers=admin.headers).json())
    employee = create_user(client, admin)
    assert client.post("/companies/me/webhook-secret", headers=employee.headers).status_code == 403
    entries = client.get(
        "/audit-logs?action=company.webhook_secret_rotated", headers=admin.headers
    ).json()
    assert entries["total"] == 2
    assert second.json()["secret"] not in str(entries)
