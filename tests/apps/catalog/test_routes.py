from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import create_category, create_user, create_vendor, signup


def test_category_crud_with_gl_code(client: TestClient) -> None:
    admin = signup(client)
    category = create_category(client, admin, name="Travel", gl_code="6100")
    assert category["gl_code"] == "6100"
    patched = client.patch(
        f"/categories/{category['id']}", json={"gl_code": None}, headers=admin.headers
    )
    assert patched.json()["gl_code"] is None
    assert (
        client.patch(
            f"/categories/{category['id']}", json={"name": None}, headers=admin.headers
        ).status_code
        == 422
    )
    assert client.delete(f"/categories/{category['id']}", headers=admin.headers).status_code == 200
    assert client.get(f"/categories/{category['id']}", headers=admin.headers).status_code == 404


def test_vendor_crud(client: TestClient) -> None:
    admin = signup(client)
    vendor = create_vendor(client, admin, name="Delta")
    assert client.get("/vendors", headers=admin.headers).json()["items"][0]["name"] == "Delta"
    renamed = client.patch(
        f"/vendors/{vendor['id']}", json={"name": "Delta Air Lines"}, headers=admin.headers
    )
    assert renamed.json()["name"] == "Delta Air Lines"
    assert client.delete(f"/vendors/{vendor['id']}", headers=admin.headers).status_code == 200


@pytest.mark.parametrize("kind", ["vendors", "categories"])
def test_names_unique_per_company(client: TestClient, kind: str) -> None:
    admin = signup(client)
    other = signup(client)
    assert client.post(f"/{kind}", json={"name": "Same"}, headers=admin.headers).status_code == 201
    duplicate = client.post(f"/{kind}", json={"name": "Same"}, headers=admin.headers)
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "name_taken"
    assert client.post(f"/{kind}", json={"name": "Same"}, headers=other.headers).status_code == 201
    second = client.post(f"/{kind}", json={"name": "Other"}, headers=admin.headers).json()
    assert (
        client.patch(
            f"/{kind}/{second['id']}", json={"name": "Same"}, headers=admin.headers
        ).status_code
        == 409
    )


def test_categories_readable_by_every_role_writable_by_admin(client: TestClient) -> None:
    admin = signup(client)
    category = create_category(client, admin)
    for role in ("employee", "manager", "finance"):
        actor = create_user(client, admin, role=role)
        assert client.get("/categories", headers=actor.headers).json()["total"] == 1
        assert client.get(f"/categories/{category['id']}", headers=actor.headers).status_code == 200
        assert (
            client.post("/categories", json={"name": "x"}, headers=actor.headers).status_code == 403
        )
        assert (
            client.patch(
                f"/categories/{category['id']}", json={"name": "x"}, headers=actor.headers
            ).status_code
            == 403
        )
        assert (
            client.delete(f"/categories/{category['id']}", headers=actor.headers).status_code == 403
        )
        assert client.get("/vendors", headers=actor.headers).status_code == 403


@pytest.mark.parametrize("kind", ["vendors", "categories"])
@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"name": "stolen"}), ("DELETE", None)]
)
def test_cross_tenant_catalog_ids_are_404(
    client: TestClient, kind: str, method: str, body: object
) -> None:
    admin = signup(client)
    intruder = signup(client)
    item = client.post(f"/{kind}", json={"name": "Mine"}, headers=admin.headers).json()
    response = client.request(method, f"/{kind}/{item['id']}", json=body, headers=intruder.headers)
    assert response.status_code == 404
    assert client.get(f"/{kind}/{item['id']}", headers=admin.headers).json()["name"] == "Mine"


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 201},
        {"name": 5},
        {"name": "ok", "company_id": "x"},
        {"name": "ok", "gl_code": "a b"},
    ],
)
def test_bad_category_bodies(client: TestClient, body: dict[str, object]) -> None:
    admin = signup(client)
    assert client.post("/categories", json=body, headers=admin.headers).status_code == 422
