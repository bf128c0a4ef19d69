"""`spendtrackr audit anchor` and `audit verify --anchor`: the chain proves the log was not edited
in place; only a hash kept outside the database proves its whole tail was not rewritten."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from spendtrackr.apps.audit.models import AuditChainHead, AuditLog
from spendtrackr.apps.audit.service import GENESIS_HASH, chain_hash
from spendtrackr.cli import app as cli
from tests.apps.audit.tampering import execute, guard_lifted
from tests.factories import create_user, create_vendor, signup, submit_spend


def _rewrite_history(app: FastAPI, company_id: uuid.UUID) -> None:
    """What an attacker with the database can do: change an old entry, then recompute every
    hash after it and the head, so that the chain verifies again."""
    with guard_lifted(app.state.engine), Session(app.state.engine) as session:
        entries = session.scalars(
            select(AuditLog).where(AuditLog.company_id == company_id).order_by(AuditLog.seq)
        ).all()
        entries[1].meta = {**entries[1].meta, "rewritten": True}
        prev = GENESIS_HASH
        for entry in entries:
            entry.prev_hash = prev
            entry.hash = prev = chain_hash(prev, entry)
        head = session.get(AuditChainHead, company_id)
        assert head is not None
        head.last_hash = prev
        session.commit()


def test_an_anchor_catches_a_rewritten_tail(
    cli_env: None, app: FastAPI, client: TestClient, tmp_path: Path
) -> None:
    admin = signup(client, company_name="Anchored")
    create_user(client, admin)
    company = client.get("/companies/me", headers=admin.headers).json()["id"]
    anchors = tmp_path / "anchors.jsonl"
    runner = CliRunner()

    taken = runner.invoke(cli, ["audit", "anchor", "--company", company, "--output", str(anchors)])
    assert taken.exit_code == 0, taken.output
    [line] = anchors.read_text().splitlines()
    anchor = json.loads(line)
    assert (anchor["company_id"], anchor["company"]) == (company, "Anchored")
    assert anchor["seq"] >= 2
    assert len(anchor["hash"]) == 64

    create_vendor(client, admin)  # the log grows past the anchor: it still holds
    grown = runner.invoke(cli, ["audit", "verify", "--company", company, "--anchor", str(anchors)])
    assert grown.exit_code == 0, grown.output
    assert grown.output.startswith(f"ok   {company} Anchored: ")

    _rewrite_history(app, uuid.UUID(company))
    chain_only = runner.invoke(cli, ["audit", "verify", "--company", company])
    assert chain_only.exit_code == 0, chain_only.output  # the chain alone cannot see it
    assert client.get("/audit-logs/verify", headers=admin.headers).json()["valid"] is True

    anchored = runner.invoke(
        cli, ["audit", "verify", "--company", company, "--anchor", str(anchors)]
    )
    assert anchored.exit_code == 1
    assert f"FAIL {company} Anchored" in anchored.output
    assert f"anchor at seq {anchor['seq']} does not match" in anchored.output


def test_verify_deep_lists_a_row_edited_behind_the_application(
    cli_env: None, app: FastAPI, client: TestClient
) -> None:
    admin = signup(client)
    vendor = create_vendor(client, admin)
    company = client.get("/companies/me", headers=admin.headers).json()["id"]
    runner = CliRunner()
    assert runner.invoke(cli, ["audit", "verify", "--company", company, "--deep"]).exit_code == 0
    with guard_lifted(app.state.engine), Session(app.state.engine) as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.entity_id == vendor["id"])).first()
        assert entry is not None
        entry_id = entry.id
        entry.action = "vendor.deleted"  # edited in place: the chain itself breaks
        session.commit()
    broken = runner.invoke(cli, ["audit", "verify", "--company", company, "--deep"])
    assert broken.exit_code == 1
    assert f"chain broken at {entry_id}" in broken.output


def test_a_file_that_is_not_anchors_is_a_usage_error(cli_env: None, tmp_path: Path) -> None:
    bad = tmp_path / "anchors.jsonl"
    bad.write_text('{"company_id": "nope"}\n')
    result = CliRunner().invoke(cli, ["audit", "verify", "--anchor", str(bad)])
    assert result.exit_code == 2
    assert "line 1 is not an anchor" in result.output


def test_a_baseline_covers_rows_no_entry_records(
    cli_env: None, app: FastAPI, client: TestClient
) -> None:
    """Rows from before entries carried digests: deep verification lists them until a baseline
    records them; a row changed after its digest stays listed whatever the baseline does."""
    admin = signup(client)
    employee = create_user(client, admin)
    older = submit_spend(client, employee, amount="10.00")
    changed = submit_spend(client, employee, amount="20.00")
    company = client.get("/companies/me", headers=admin.headers).json()["id"]
    engine = app.state.engine
    as_id = (lambda i: i.replace("-", "")) if engine.dialect.name == "sqlite" else (lambda i: i)
    with guard_lifted(engine):  # what an older release wrote: no digest in the entry
        execute(
            engine,
            "UPDATE audit_log SET metadata = '{}' WHERE entity_id = :id",
            id=older["id"],
        )
    execute(engine, "UPDATE spend SET amount = 2 WHERE id = :id", id=as_id(changed["id"]))
    runner = CliRunner()
    before = runner.invoke(cli, ["audit", "verify", "--company", company, "--deep"])
    assert before.exit_code == 1
    assert f"spend {older['id']}: no audit entry records it" in before.output
    taken = runner.invoke(cli, ["audit", "baseline", "--company", company])
    assert taken.exit_code == 0, taken.output
    assert f"{company}: 1 rows given a baseline" in taken.output
    after = client.get("/audit-logs/verify?deep=true", headers=admin.headers).json()
    assert [m["entity_id"] for m in after["deep"]["mismatches"]] == [changed["id"]]
    again = runner.invoke(cli, ["audit", "baseline", "--company", company])
    assert f"{company}: 0 rows given a baseline" in again.output
