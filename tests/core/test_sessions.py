"""Every entry point takes its sessions from `spendtrackr.sessions`, and a session from there
keeps every invariant whatever else the process imported: here, a fresh interpreter that imports
nothing but the models and that module writes a spend and an audit entry by hand."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from fastapi.testclient import TestClient

from tests.factories import signup

SCRIPT = textwrap.dedent(
    """
    import sys, uuid
    from datetime import date
    from decimal import Decimal

    from sqlalchemy import create_engine, func, select
    from spendtrackr.models import AuditLog, Spend, SpendTotal  # models only
    from spendtrackr.apps.audit import service as audit
    from spendtrackr.sessions import session_factory

    url, company, user, plain = sys.argv[1], uuid.UUID(sys.argv[2]), uuid.UUID(sys.argv[3]), sys.argv[4]
    engine = create_engine(url)
    if plain == "plain":
        from sqlalchemy.orm import Session
        factory = lambda: Session(engine)
    else:
        factory = session_factory(engine)
    with factory() as session:
        spend = Spend(
            id=uuid.uuid4(), company_id=company, user_id=user, amount=Decimal("12.34"),
            currency="USD", spend_date=date(2026, 1, 2), status="approved",
            base_amount=Decimal("12.34"), base_currency="USD", fx_rate=Decimal(1),
            fx_date=date(2026, 1, 2),
        )
        session.add(spend)
        audit.record(
            session, company_id=company, actor_id=user, action="spend.created",
            entity_type="spend", entity_id=spend.id,
        )
        session.commit()
    with factory() as session:
        totals = session.scalar(
            select(func.count()).select_from(SpendTotal).where(SpendTotal.company_id == company)
        )
        entries = session.scalar(
            select(func.count()).select_from(AuditLog).where(
                AuditLog.company_id == company, AuditLog.action == "spend.created"
            )
        )
        print(totals, entries)
    """
)


def _run(database_url: str, company: str, user: str, how: str) -> list[int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(  # noqa: S603 (this file's own script)
        [sys.executable, "-c", SCRIPT, database_url, company, user, how],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return [int(n) for n in done.stdout.split()]


def test_a_bare_session_from_any_entry_point_keeps_every_invariant(
    client: TestClient, database_url: str
) -> None:
    admin = signup(client)
    totals, entries = _run(database_url, admin.company_id, admin.id, "project")
    assert totals == 4  # one row per dimension: company, category, vendor, team
    assert entries == 1
    verify = client.get("/audit-logs/verify", headers=admin.headers).json()
    assert verify["valid"] is True


def test_a_plain_session_runs_no_project_hooks(client: TestClient, database_url: str) -> None:
    """Hooks are registered on the project's Session class, not on every Session in the process:
    a hand-made session (a test, an operator's fix) writes exactly what it is told."""
    admin = signup(client)
    totals, entries = _run(database_url, admin.company_id, admin.id, "plain")
    assert (totals, entries) == (0, 0)  # the audit entry staged was never appended
