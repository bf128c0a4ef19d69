"""`spendtrackr demo`: both builders keep the invariants of the flows, and running twice is safe."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from bench import loader
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import JSON, Column, Integer, MetaData, Table, Text, select
from typer.testing import CliRunner

from spendtrackr import demo
from spendtrackr.cli import app as cli
from spendtrackr.core.config import Settings
from tests.factories import Actor, login, walk_all


def _actor(client: TestClient, email: str, role: str) -> Actor:
    tokens = login(client, email, demo.PASSWORD)
    me = client.get(
        "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    return Actor(
        me["id"], email, me["company_id"], role, tokens["access_token"], tokens["refresh_token"]
    )


def _check_invariants(client: TestClient, admin: Actor) -> dict[str, int]:
    # the chain, and every spend, decided step and journal against the digest its entry recorded
    verified = client.get("/audit-logs/verify?deep=true", headers=admin.headers).json()
    assert verified["deep"]["mismatches"][:3] == []
    assert verified["valid"] is True
    lines = client.get("/exports/accounting.csv?format=json", headers=admin.headers).json()["items"]
    journals: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        journals[line["journal_id"]] += Decimal(line["debit"]) - Decimal(line["credit"])
    assert set(journals.values()) == {Decimal(0)}
    statuses = {
        i["key"]: i["count"]
        for i in client.get("/reports/spend-summary?group_by=status", headers=admin.headers).json()[
            "items"
        ]
    }
    pending = client.get("/spends?status=pending&limit=200", headers=admin.headers).json()["items"]
    assert all(any(a["status"] == "pending" for a in s["approvals"]) for s in pending)
    approved_ids = {
        s["id"]
        for s in client.get("/spends?status=approved&limit=200", headers=admin.headers).json()[
            "items"
        ]
    }
    assert approved_ids <= {line["spend_id"] for line in lines}
    return statuses


def test_demo_company_through_the_flows(cli_env: None, client: TestClient) -> None:
    result = CliRunner().invoke(cli, ["demo", "--spends", "150"])
    assert result.exit_code == 0, result.output
    assert "admin@demo.spendtrackr.example" in result.output
    admin = _actor(client, "admin@demo.spendtrackr.example", "admin")
    statuses = _check_invariants(client, admin)
    assert "approved" in statuses
    assert len(statuses) >= 3
    assert sum(statuses.values()) >= 100
    roles = {
        u["role"]
        for u in client.get("/admin/users?limit=200", headers=admin.headers).json()["items"]
    }
    assert roles == {"admin", "finance", "manager", "employee"}
    assert client.get("/cards", headers=admin.headers).json()["total"] == 5
    assert client.get("/policies", headers=admin.headers).json()["total"] == 1
    manager = _actor(client, "priya.haddad@demo.spendtrackr.example", "manager")
    assert client.get("/spends", headers=manager.headers).json()["total"] < sum(statuses.values())
    again = CliRunner().invoke(cli, ["demo", "--spends", "150"])
    assert again.exit_code == 0
    assert "already there" in again.output
    assert _check_invariants(client, admin) == statuses


def test_large_tenant_in_bulk(settings: Settings, app: FastAPI, client: TestClient) -> None:
    tenant = loader.build_large(
        app.state.session_factory,
        settings,
        spends=1200,
        seed=3,
        console=Console(quiet=True),
        batch=500,
    )
    assert tenant.created
    admin = _actor(client, tenant.admin.email, "admin")
    statuses = _check_invariants(client, admin)
    assert sum(statuses.values()) == 1200
    assert set(statuses) == {
        "approved",
        "reimbursed",
        "pending",
        "rejected",
        "blocked",
        "cancelled",
    }
    # Every spend was made before the load (none later today): a walk by cursor, which leaves
    # out what changed after it began, reaches all of them.
    assert len(walk_all(client, admin, "/spends", limit=200)) == 1200
    again = loader.build_large(
        app.state.session_factory, settings, spends=1200, seed=3, console=Console(quiet=True)
    )
    assert not again.created


def test_the_loaders_literal_values_read_back_as_written(app: FastAPI) -> None:
    """On MySQL the loader writes its rows as INSERTs of literal values, escaped by itself."""
    engine = app.state.engine
    if engine.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("the literal INSERTs are the MySQL path")
    table = Table(
        "loader_literal_probe",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("text", Text),
        Column("doc", JSON),
    )
    texts = [
        "plain",
        "O'Brien",
        'say "hi"',
        "back\\slash",
        "a\nb\r\nc",
        "nul\0byte",
        "sub\x1a",
        "é ü 中",
        "\\'",
        "",
    ]
    rows = [{"id": i, "text": t, "doc": {"note": t, "n": [i, None]}} for i, t in enumerate(texts)]
    table.create(engine)
    try:
        with engine.begin() as conn:
            for statement in loader._literal_inserts(table, rows, chunk=3):
                conn.exec_driver_sql(statement)
            read = conn.execute(select(table).order_by(table.c.id)).mappings().all()
    finally:
        table.drop(engine)
    assert [dict(r) for r in read] == rows
