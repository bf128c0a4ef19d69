"""The benchmark's large tenant, written in bulk (`python -m bench.loader --spends N`).

Rows go in with plain multi-row INSERTs, thousands at a time, but each one is built by the
domain that owns its kind: journals by `ledger.service.journal_lines`, the audit chain by
`audit.service.BulkChain`, digests from each model's `__audit_digest__`, the daily totals by
`spends.totals`. So the tenant keeps every invariant the flows keep (the chain verifies, deep
verification finds nothing, journals balance, totals match), which `tests/test_demo.py` checks.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from sqlalchemy import Table, insert, update
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.approvals.models import ApprovalStep
from spendtrackr.apps.audit import service as audit_service
from spendtrackr.apps.audit.models import AuditChainHead, AuditLog
from spendtrackr.apps.ledger import service as ledger_service
from spendtrackr.apps.ledger.models import LedgerLine
from spendtrackr.apps.spends import totals
from spendtrackr.apps.spends.models import Spend
from spendtrackr.core.config import Settings, get_settings
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import session_scope, utcnow
from spendtrackr.core.security import Passwords
from spendtrackr.demo import (
    Tenant,
    base_tenant,
    email_for,
    existing_admin,
    logins_of,
    print_tenant,
    progress,
    random_amount,
)
from spendtrackr.sessions import open_sessions

SPEND_TABLE = cast(Table, Spend.__table__)
STEP_TABLE = cast(Table, ApprovalStep.__table__)
LEDGER_TABLE = cast(Table, LedgerLine.__table__)
AUDIT_TABLE = cast(Table, AuditLog.__table__)
STATUS_MIX = [
    ("approved", 0.70),
    ("reimbursed", 0.10),
    ("pending", 0.10),
    ("rejected", 0.05),
    ("blocked", 0.03),
    ("cancelled", 0.02),
]


def _status(rng: random.Random) -> str:
    roll = rng.random()
    for status, share in STATUS_MIX:
        roll -= share
        if roll < 0:
            return status
    return "approved"


def build_large(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    spends: int,
    seed: int,
    console: Console,
    batch: int = 5000,
) -> Tenant:
    """A tenant with `spends` spends, written in bulk with the invariants the flows keep: every
    spend has its audit entry in the company's chain, pending and rejected ones have their
    approval step, approved and reimbursed ones their balanced journal lines."""
    rng = random.Random(seed)
    passwords = Passwords(settings)
    tag = f"bench{spends}"
    with session_scope(factory) as session:
        existing = existing_admin(session, email_for(tag, "admin"))
        if existing is not None:
            return Tenant(
                existing.company_id, existing, created=False, logins=logins_of(session, existing)
            )
        tenant, people, categories, vendors = base_tenant(
            session, passwords, tag=tag, company=f"Bench Corp {spends:,}", employees=200
        )
    company_id = tenant.company_id
    submitters = people["employee"] + people["manager"]
    manager_of = {u.id: u.manager_id for u in submitters}
    names = {u.id: u.full_name for u in submitters}
    gl = {c.id: c.gl_code or settings.ledger_default_expense_account for c in categories}
    today = utcnow().date()
    with session_scope(factory) as session:
        head = session.get(AuditChainHead, company_id)
        assert head is not None
        chain = audit_service.BulkChain(company_id, head.seq, head.last_hash)
    # One thread writes a batch while this one builds the next: MariaDB's work on a batch and
    # the Python that builds the next one overlap, on two cores.
    pending: Future[None] | None = None
    with progress(console) as bar, ThreadPoolExecutor(max_workers=1) as writer:
        task = bar.add_task(f"{spends:,} spends", total=spends)
        written = 0
        while written < spends:
            size = min(batch, spends - written)
            spend_rows: list[dict[str, Any]] = []
            step_rows: list[dict[str, Any]] = []
            ledger_rows: list[dict[str, Any]] = []
            deltas: totals.Deltas = {}

            for _ in range(size):
                user = rng.choice(submitters)
                day = today - timedelta(days=rng.randint(0, 729))
                created = datetime.combine(
                    day,
                    time(
                        rng.randint(7, 20),
                        rng.randint(0, 59),
                        rng.randint(0, 59),
                        rng.randint(0, 999_999),
                    ),
                    UTC,
                )
                category = rng.choice(categories[:-1])
                vendor = rng.choice(vendors)
                amount = random_amount(rng)
                status = _status(rng)
                spend_id = uuid.uuid4()
                journals_of_spend: dict[uuid.UUID, list[dict[str, Any]]] = {}
                outcome = {"pending": "pending", "rejected": "pending", "blocked": "blocked"}.get(
                    status, "approved"
                )
                spend_rows.append(
                    {
                        "id": spend_id,
                        "company_id": company_id,
                        "user_id": user.id,
                        "amount": amount,
                        "currency": "USD",
                        "base_amount": amount,
                        "base_currency": "USD",
                        "fx_rate": Decimal(1),
                        "fx_date": day,
                        "spend_date": day,
                        "description": f"{vendor.name} {category.name.lower()}",
                        "source": "manual",
                        "status": status,
                        "category_id": category.id,
                        "vendor_id": vendor.id,
                        "team_id": None,
                        "card_id": None,
                        "system_flags": [],
                        "policy_flags": [],
                        "policy_result": {
                            "outcome": outcome,
                            "matched_rules": [],
                            "approvers": ["manager"] if outcome == "pending" else [],
                            "flags": [],
                            "block_reason": "Blocked by policy" if status == "blocked" else None,
                        },
                        "decided_at": None if status in ("pending", "cancelled") else created,
                        "reimbursed_at": created if status == "reimbursed" else None,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                totals.count(deltas, spend_rows[-1])
                if status in ("pending", "rejected"):
                    step_rows.append(
                        {
                            "id": uuid.uuid4(),
                            "company_id": company_id,
                            "spend_id": spend_id,
                            "submitter_id": user.id,
                            "step": 1,
                            "approver_spec": "manager",
                            "approver_id": manager_of[user.id],
                            "approver_role": None if manager_of[user.id] else "admin",
                            "status": status,
                            "decided_by": manager_of[user.id] if status == "rejected" else None,
                            "comment": None,
                            "decided_at": created if status == "rejected" else None,
                            "created_at": created,
                            "updated_at": created,
                        }
                    )
                if status in ("approved", "reimbursed"):
                    journals = [
                        ("approval", gl[category.id], settings.ledger_employee_payable_account)
                    ]
                    if status == "reimbursed":
                        journals.append(
                            (
                                "reimbursement",
                                settings.ledger_employee_payable_account,
                                settings.ledger_cash_account,
                            )
                        )
                    posting = ledger_service.Posting(
                        spend_id=spend_id,
                        company_id=company_id,
                        entry_date=day,
                        amount=amount,
                        currency="USD",
                        vendor=vendor.name,
                        description=f"{vendor.name} {category.name.lower()}",
                        employee=names[user.id],
                        original_amount=amount,
                        original_currency="USD",
                        fx_rate=Decimal(1),
                    )
                    for kind, debit_account, credit_account in journals:
                        journal, lines = ledger_service.journal_lines(
                            posting, kind, debit_account, credit_account, at=created
                        )
                        ledger_rows += lines
                        journals_of_spend[journal] = lines
                spend_row = spend_rows[-1]
                chain.append(
                    "spend.created",
                    "spend",
                    spend_id,
                    user.id,
                    {
                        "amount": str(quantize(amount, "USD")),
                        "currency": "USD",
                        "source": "manual",
                        "bulk": True,
                        "digest": audit_service.digest(
                            {name: spend_row[name] for name in Spend.__audit_digest__}
                        ),
                    },
                    created,
                )
                if status == "rejected":
                    step = step_rows[-1]
                    chain.append(
                        "approval.rejected",
                        "approval",
                        step["id"],
                        step["decided_by"],
                        {
                            "spend_id": str(spend_id),
                            "step": 1,
                            "digest": audit_service.digest(
                                {name: step[name] for name in ApprovalStep.__audit_digest__}
                            ),
                        },
                        created,
                    )
                for journal, lines in journals_of_spend.items():
                    chain.append(
                        "ledger.posted",
                        "journal",
                        journal,
                        None,
                        {
                            "spend_id": str(spend_id),
                            "kind": lines[0]["kind"],
                            "digest": ledger_service.journal_digest(lines),
                        },
                        created,
                    )
            if pending is not None:
                pending.result()  # the batch before has been written (or its error is raised)
            pending = writer.submit(
                _write,
                factory,
                company_id,
                [
                    (SPEND_TABLE, spend_rows),
                    (STEP_TABLE, step_rows),
                    (LEDGER_TABLE, ledger_rows),
                    (AUDIT_TABLE, chain.take()),
                ],
                deltas,
                (chain.seq, chain.prev),
            )
            written += size
            bar.advance(task, size)
        if pending is not None:
            pending.result()
    return tenant


# MySQL string literal escapes (as the server reads them with its default sql_mode).
_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "\\'", '"': '\\"', "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"}
)


def _quoted(value: Any) -> str:
    return "'" + str(value).translate(_ESCAPES) + "'"


_LITERALS: dict[type, Callable[[Any], str]] = {
    str: _quoted,
    uuid.UUID: lambda v: "'" + v.hex + "'",  # MariaDB's UUID type and MySQL's CHAR(32) read it
    int: str,
    bool: lambda v: "1" if v else "0",
    Decimal: lambda v: format(v, "f"),
    float: repr,
    datetime: lambda v: "'" + v.isoformat(" ") + "'",
    date: lambda v: "'" + v.isoformat() + "'",
}


def _insert_literal(
    session: Session, table: Table, rows: list[dict[str, Any]], chunk: int = 1000
) -> None:
    """The rows as multi-row INSERTs of literal values, made here: the driver's own escaping of
    each value (a chain of calls per value) was a third of the load's Python time. Each value
    still goes through its column type's bind processor first, as SQLAlchemy would send it."""
    dialect = session.get_bind().dialect
    columns = [c for c in table.columns if c.name in rows[0]]
    processors = [c.type.bind_processor(dialect) for c in columns]
    names = ", ".join(f"`{c.name}`" for c in columns)
    cursor = session.connection().connection.cursor()
    try:
        for start in range(0, len(rows), chunk):
            values = []
            for row in rows[start : start + chunk]:
                cells = []
                for column, process in zip(columns, processors, strict=True):
                    value = row[column.name]
                    if process is not None:
                        value = process(value)
                    cells.append("NULL" if value is None else _LITERALS[type(value)](value))
                values.append("(" + ",".join(cells) + ")")
            cursor.execute(f"INSERT INTO `{table.name}` ({names}) VALUES " + ",".join(values))
    finally:
        cursor.close()


def _write(
    factory: sessionmaker[Session],
    company_id: uuid.UUID,
    tables: list[tuple[Table, list[dict[str, Any]]]],
    deltas: totals.Deltas,
    head: tuple[int, str],
) -> None:
    """One batch in one transaction: its rows, its totals, and the chain head moved past it."""
    with session_scope(factory) as session:
        mysql = session.get_bind().dialect.name in ("mysql", "mariadb")
        for table, rows in tables:
            if rows and mysql:
                _insert_literal(session, table, rows)
            elif rows:
                session.execute(insert(table), rows)
        totals.write(session, deltas)
        session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.company_id == company_id)
            .values(seq=head[0], last_hash=head[1])
        )


def main(
    spends: Annotated[int, typer.Option(min=1, max=10_000_000, help="How many spends")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
) -> None:
    """Load (or find, if it is there) the tenant of `spends` spends in DATABASE_URL."""
    settings = get_settings()
    console = Console()
    with open_sessions(settings) as factory:
        tenant = build_large(factory, settings, spends=spends, seed=seed, console=console)
        print_tenant(console, tenant, factory)


if __name__ == "__main__":
    typer.run(main)
