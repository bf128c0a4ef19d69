from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError

from tests.apps.audit.tampering import execute, guard_lifted
from tests.factories import create_user, create_vendor, signup


def test_every_change_is_audited_and_the_chain_verifies(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    vendor = create_vendor(client, admin)
    client.patch(f"/vendors/{vendor['id']}", json={"name": "Renamed"}, headers=admin.headers)
    client.patch(f"/admin/users/{employee.id}", json={"role": "manager"}, headers=admin.headers)
    entries = client.get("/audit-logs?limit=200", headers=admin.headers).json()
    actions = [e["action"] for e in reversed(entries["items"])]
    assert actions[:2] == ["company.created", "user.created"]
    assert {
        "user.created",
        "auth.login_succeeded",
        "vendor.created",
        "vendor.updated",
        "user.updated",
    } <= set(actions)
    renamed = next(e for e in entries["items"] if e["action"] == "vendor.updated")
    assert renamed["metadata"]["changes"]["name"][1] == "Renamed"
    assert renamed["actor_id"] == admin.id
    verify = client.get("/audit-logs/verify", headers=admin.headers).json()
    assert verify == {"valid": True, "checked": entries["total"], "first_invalid_id": None}


def test_audit_filters(client: TestClient) -> None:
    admin = signup(client)
    vendor = create_vendor(client, admin)
    by_entity = client.get(
        f"/audit-logs?entity_type=vendor&entity_id={vendor['id']}", headers=admin.headers
    ).json()
    assert [e["action"] for e in by_entity["items"]] == ["vendor.created"]
    by_actor = client.get(
        f"/audit-logs?actor_id={admin.id}&action=vendor.created", headers=admin.headers
    ).json()
    assert by_actor["total"] == 1
    assert (
        client.get(
            "/audit-logs?date_from=2000-01-01&date_to=2000-01-02", headers=admin.headers
        ).json()["total"]
        == 0
    )
    assert client.get("/audit-logs?date_from=yesterday", headers=admin.headers).status_code == 422


def test_audit_is_finance_and_admin_only_and_per_company(client: TestClient) -> None:
    admin = signup(client)
    other = signup(client)
    for role, status in (("employee", 403), ("manager", 403), ("finance", 200)):
        actor = create_user(client, admin, role=role)
        assert client.get("/audit-logs", headers=actor.headers).status_code == status
        assert client.get("/audit-logs/verify", headers=actor.headers).status_code == status
    mine = {
        e["id"] for e in client.get("/audit-logs?limit=200", headers=admin.headers).json()["items"]
    }
    theirs = {
        e["id"] for e in client.get("/audit-logs?limit=200", headers=other.headers).json()["items"]
    }
    assert mine
    assert theirs
    assert not (mine & theirs)


def _exec(app: FastAPI, sql: str, **params: object) -> None:
    execute(app.state.engine, sql, **params)


def test_database_rejects_update_and_delete_of_audit_rows(client: TestClient, app: FastAPI) -> None:
    admin = signup(client)
    entry = client.get("/audit-logs", headers=admin.headers).json()["items"][0]
    entry_id = entry["id"].replace("-", "")
    with pytest.raises(DBAPIError, match="append-only"):
        _exec(app, "UPDATE audit_log SET action = 'x' WHERE id = :id", id=entry_id)
    with pytest.raises(DBAPIError, match="append-only"):
        _exec(app, "DELETE FROM audit_log WHERE id = :id", id=entry_id)


def test_verify_detects_an_entry_edited_in_the_database(client: TestClient, app: FastAPI) -> None:
    admin = signup(client)
    create_vendor(client, admin, name="Honest Vendor")
    create_vendor(client, admin)
    target = client.get("/audit-logs?action=vendor.created", headers=admin.headers).json()["items"][
        -1
    ]
    assert target["metadata"]["name"] == "Honest Vendor"
    # someone with database access drops the guard and edits history
    with guard_lifted(app.state.engine):
        _exec(
            app,
            "UPDATE audit_log SET metadata = :meta WHERE id = :id",
            meta='{"name": "Crooked Vendor"}',
            id=target["id"].replace("-", ""),
        )
    result = client.get("/audit-logs/verify", headers=admin.headers).json()
    assert result["valid"] is False
    assert result["first_invalid_id"] == target["id"]
    # other companies' chains are unaffected
    other = signup(client)
    assert client.get("/audit-logs/verify", headers=other.headers).json()["valid"] is True


def test_concurrent_writers_keep_one_valid_chain(client: TestClient, live_server: str) -> None:
    admin = signup(client)
    writes = 40

    def write(i: int) -> int:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            return http.post("/vendors", json={"name": f"v{i}"}, headers=admin.headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(write, range(writes)))
    assert statuses == [201] * writes
    verify = client.get("/audit-logs/verify", headers=admin.headers).json()
    assert verify["valid"] is True
    assert (
        client.get("/audit-logs?action=vendor.created", headers=admin.headers).json()["total"]
        == writes
    )
