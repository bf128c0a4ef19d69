"""Exports written by a worker: asked for, written, announced (`export.ready`), downloaded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.apps.ledger import flows as ledger_flows
from spendtrackr.apps.ledger import service as ledger_service
from spendtrackr.core.db import session_scope, utcnow
from tests.factories import Actor, create_user, signup, submit_spend


def run(app: FastAPI, **kwargs: Any) -> int:
    return ledger_flows.run_export(app.state.session_factory, storage=app.state.storage, **kwargs)


def drain(app: FastAPI) -> None:
    """Exports other tests left waiting are written first, so that the next run is this test's."""
    while run(app):
        pass


def company_with_spends(client: TestClient) -> tuple[Actor, Actor]:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    for amount in ("10.00", "=cmd|' /C calc'!A0", "32.50"):
        if amount.startswith("="):
            submit_spend(client, employee, amount="5.00", description=amount)
        else:
            submit_spend(client, employee, amount=amount)
    return finance, employee


def test_an_export_is_written_by_the_worker_and_announced(client: TestClient, app: FastAPI) -> None:
    drain(app)
    finance, employee = company_with_spends(client)
    asked = client.post("/exports", json={"format": "csv"}, headers=finance.headers)
    assert asked.status_code == 202, asked.text
    export = asked.json()
    assert (export["status"], export["file_url"]) == ("pending", None)
    early = client.get(f"/exports/{export['id']}/file", headers=finance.headers)
    assert (early.status_code, early.json()["code"]) == (409, "export_not_ready")

    assert run(app) == 1
    ready = client.get(f"/exports/{export['id']}", headers=finance.headers).json()
    assert ready["status"] == "ready"
    assert ready["line_count"] == 6  # three approved spends, a debit and a credit each
    assert ready["file_url"] == f"/exports/{export['id']}/file"
    file = client.get(ready["file_url"], headers=finance.headers)
    assert file.status_code == 200
    assert file.headers["content-type"].startswith("text/csv")
    assert int(file.headers["content-length"]) == ready["size"]
    # the same lines as the streamed export, formula cells neutralised alike
    streamed = client.get("/exports/accounting.csv", headers=finance.headers)
    assert file.content == streamed.content
    assert b"'=cmd" in file.content

    events = client.get("/events?types=export.ready", headers=finance.headers).json()["items"]
    assert [(e["data"]["id"], e["data"]["line_count"]) for e in events] == [(export["id"], 6)]
    listed = client.get("/exports", headers=finance.headers).json()
    assert [e["id"] for e in listed["items"]] == [export["id"]]

    as_json = client.post(
        "/exports", json={"format": "json", "only_unexported": True}, headers=finance.headers
    ).json()
    assert run(app) == 1
    body = client.get(f"/exports/{as_json['id']}/file", headers=finance.headers).json()
    assert len(body["items"]) == 6

    assert client.post("/exports", json={}, headers=employee.headers).status_code == 403
    other = signup(client)
    assert client.get(f"/exports/{export['id']}", headers=other.headers).status_code == 404
    bad = client.post(
        "/exports",
        json={"format": "xlsx", "date_from": "2026-12-01", "date_to": "2026-11-01"},
        headers=finance.headers,
    )
    assert bad.status_code == 422


def test_an_export_whose_worker_died_is_taken_again(client: TestClient, app: FastAPI) -> None:
    drain(app)
    finance, _ = company_with_spends(client)
    export = client.post("/exports", json={}, headers=finance.headers).json()
    # A worker takes it and dies before writing anything.
    with session_scope(app.state.session_factory) as session:
        taken = ledger_service.claim_export(session, now=utcnow(), stale=timedelta(minutes=15))
        assert taken is not None
        assert str(taken.id) == export["id"]
    assert client.get(f"/exports/{export['id']}", headers=finance.headers).json()["status"] == (
        "running"
    )
    assert run(app) == 0  # still its worker's
    assert run(app, now=utcnow() + timedelta(minutes=16)) == 1
    again = client.get(f"/exports/{export['id']}", headers=finance.headers).json()
    assert (again["status"], again["line_count"]) == ("ready", 6)
