"""The benchmark's large tenant, written in bulk (`python -m bench.loader --spends N`).

Rows go in with plain multi-row INSERTs, thousands at a time, but each one is built by the
domain that owns its kind: journals by `ledger.service.journal_lines`, the audit chain by
`audit.service.BulkChain`, digests from each model's `__audit_digest__`, the daily totals by
`spends.totals`. So the tenant keeps every invariant the flows keep (the chain verifies, deep
verification finds nothing, journals balance, totals match), which `tests/test_demo.py` checks
and the bench checks again after each 1M load (`bench.extras.load_invariants`).

On MySQL two processes build the batches and format them as INSERTs of literal values, this
one links their audit entries into the chain, and a thread writes each batch in one transaction
while the next ones are built.
"""

from __future__ import annotations

import random
import re
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from sqlalchemy import Table, insert, update
from sqlalchemy.dialects.mysql import pymysql as mysql_pymysql
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
TABLES = {t.name: t for t in (SPEND_TABLE, STEP_TABLE, LEDGER_TABLE, AUDIT_TABLE)}
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


@dataclass(frozen=True)
class _Context:
    """What building a batch needs, plain enough to send to another process."""

    company_id: uuid.UUID
    # (id, full name, manager id) of each person who submits
    submitters: list[tuple[uuid.UUID, str, uuid.UUID | None]]
    categories: list[tuple[uuid.UUID, str, str]]  # (id, name, GL code)
    vendors: list[tuple[uuid.UUID, str]]
    payable: str
    cash: str
    today: date
    spends: int  # in the whole tenant: the n-th spend of it falls on day n * 730 // spends
    seed: int
    dialect: str  # "mysql": tables come back as INSERT statements, else as rows


@dataclass
class _Batch:
    # Per table (by name: a Table does not cross processes), in the order they are written:
    # INSERT statements (MySQL) or rows (otherwise).
    tables: list[tuple[str, list[str] | list[dict[str, Any]]]]
    deltas: totals.Deltas
    # The batch's audit entries, in order, to be linked into the chain by the caller.
    entries: list[tuple[str, str, uuid.UUID, uuid.UUID | None, dict[str, Any], datetime]]


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
    approval step, approved and reimbursed ones their balanced journal lines.

    Batches are built by two processes (on MySQL, with more than two batches), each batch from a
    random generator of its own (so the tenant is the same however they are spread), and
    written in order by a thread of this one, which links each batch's entries into the chain
    as it comes: the Python that builds rows, and MariaDB's work on the batch before, overlap on
    every core."""
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
        dialect = session.get_bind().dialect.name
    company_id = tenant.company_id
    context = _Context(
        company_id=company_id,
        submitters=[
            (u.id, u.full_name, u.manager_id) for u in people["employee"] + people["manager"]
        ],
        categories=[
            (c.id, c.name, c.gl_code or settings.ledger_default_expense_account)
            for c in categories[:-1]
        ],
        vendors=[(v.id, v.name) for v in vendors],
        payable=settings.ledger_employee_payable_account,
        cash=settings.ledger_cash_account,
        today=utcnow().date(),
        spends=spends,
        seed=seed,
        dialect="mysql" if dialect in ("mysql", "mariadb") else dialect,
    )
    with session_scope(factory) as session:
        head = session.get(AuditChainHead, company_id)
        assert head is not None
        chain = audit_service.BulkChain(company_id, head.seq, head.last_hash)
    batches = [(start, min(batch, spends - start)) for start in range(0, spends, batch)]
    parallel = context.dialect == "mysql" and len(batches) > 2
    pool: Executor = ProcessPoolExecutor(max_workers=2) if parallel else _InProcess()
    pending: Future[None] | None = None
    with progress(console) as bar, pool, ThreadPoolExecutor(max_workers=1) as writer:
        task = bar.add_task(f"{spends:,} spends", total=spends)
        # A few batches ahead, so that neither builder waits for the other's turn.
        building = deque(pool.submit(_build, context, i, *b) for i, b in enumerate(batches[:4]))
        for index, (_, size) in enumerate(batches):
            built = building.popleft().result()
            if index + 4 < len(batches):
                building.append(pool.submit(_build, context, index + 4, *batches[index + 4]))
            for entry in built.entries:
                chain.append(*entry)
            audit_rows = chain.take()
            audit: list[str] | list[dict[str, Any]] = (
                _literal_inserts(AUDIT_TABLE, audit_rows)
                if context.dialect == "mysql"
                else audit_rows
            )
            if pending is not None:
                pending.result()  # the batch before has been written (or its error is raised)
            pending = writer.submit(
                _write,
                factory,
                company_id,
                [(TABLES[name], rows) for name, rows in built.tables] + [(AUDIT_TABLE, audit)],
                built.deltas,
                (chain.seq, chain.prev),
            )
            bar.advance(task, size)
        if pending is not None:
            pending.result()
    return tenant


class _InProcess(Executor):
    """Builds each batch when asked, in this process (SQLite, or a small tenant)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _build(context: _Context, index: int, start: int, size: int) -> _Batch:
    """The spends at positions [start, start + size) of the tenant, with everything they bring."""
    rng = random.Random(context.seed * 1_000_003 + index)
    company_id = context.company_id
    spend_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    ledger_rows: list[dict[str, Any]] = []
    deltas: totals.Deltas = {}
    entries: list[tuple[str, str, uuid.UUID, uuid.UUID | None, dict[str, Any], datetime]] = []
    # Spends come in the order they were made, as a company's do: a batch covers a few days of
    # its own, so its daily totals are rows no other batch writes and the date-ordered indexes
    # grow at one end. The last day is yesterday: a spend made later today would be in the
    # future, and a cursor's page leaves out what changed after it was read.
    first = context.today - timedelta(days=730)
    moments = sorted(
        datetime.combine(
            first + timedelta(days=position * 730 // context.spends),
            time(
                rng.randint(7, 20), rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999_999)
            ),
            UTC,
        )
        for position in range(start, start + size)
    )
    for created in moments:
        day = created.date()
        user_id, user_name, manager_id = rng.choice(context.submitters)
        category_id, category_name, gl = rng.choice(context.categories)
        vendor_id, vendor_name = rng.choice(context.vendors)
        amount = random_amount(rng)
        status = _status(rng)
        spend_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        description = f"{vendor_name} {category_name.lower()}"
        outcome = {"pending": "pending", "rejected": "pending", "blocked": "blocked"}.get(
            status, "approved"
        )
        spend_row = {
            "id": spend_id,
            "company_id": company_id,
            "user_id": user_id,
            "amount": amount,
            "currency": "USD",
            "base_amount": amount,
            "base_currency": "USD",
            "fx_rate": Decimal(1),
            "fx_date": day,
            "spend_date": day,
            "description": description,
            "source": "manual",
            "status": status,
            "category_id": category_id,
            "vendor_id": vendor_id,
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
        spend_rows.append(spend_row)
        totals.count(deltas, spend_row)
        entries.append(
            (
                "spend.created",
                "spend",
                spend_id,
                user_id,
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
        )
        if status in ("pending", "rejected"):
            step: dict[str, Any] = {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "company_id": company_id,
                "spend_id": spend_id,
                "submitter_id": user_id,
                "step": 1,
                "approver_spec": "manager",
                "approver_id": manager_id,
                "approver_role": None if manager_id else "admin",
                "status": status,
                "decided_by": manager_id if status == "rejected" else None,
                "comment": None,
                "decided_at": created if status == "rejected" else None,
                "created_at": created,
                "updated_at": created,
            }
            step_rows.append(step)
            if status == "rejected":
                entries.append(
                    (
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
                )
        if status in ("approved", "reimbursed"):
            journals = [("approval", gl, context.payable)]
            if status == "reimbursed":
                journals.append(("reimbursement", context.payable, context.cash))
            posting = ledger_service.Posting(
                spend_id=spend_id,
                company_id=company_id,
                entry_date=day,
                amount=amount,
                currency="USD",
                vendor=vendor_name,
                description=description,
                employee=user_name,
                original_amount=amount,
                original_currency="USD",
                fx_rate=Decimal(1),
            )
            for kind, debit_account, credit_account in journals:
                journal, lines = ledger_service.journal_lines(
                    posting, kind, debit_account, credit_account, at=created
                )
                ledger_rows += lines
                entries.append(
                    (
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
                )
    tables = [(SPEND_TABLE, spend_rows), (STEP_TABLE, step_rows), (LEDGER_TABLE, ledger_rows)]
    if context.dialect == "mysql":
        return _Batch([(t.name, _literal_inserts(t, rows)) for t, rows in tables], deltas, entries)
    return _Batch([(t.name, rows) for t, rows in tables], deltas, entries)


# MySQL string literal escapes (as the server reads them with its default sql_mode); a double
# quote needs none inside single quotes.
_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"}
)
_NEEDS_ESCAPE = re.compile(r"[\\'\0\n\r\x1a]")


def _quoted(value: str) -> str:
    # Most values (names, JSON documents) hold none of those: a scan is cheaper than a rewrite.
    if _NEEDS_ESCAPE.search(value) is not None:
        value = value.translate(_ESCAPES)
    return "'" + value + "'"


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


_MYSQL = mysql_pymysql.dialect()


def _literal_inserts(table: Table, rows: list[dict[str, Any]], chunk: int = 1000) -> list[str]:
    """The rows as multi-row INSERTs of literal values, made here: the driver's own escaping of
    each value (a chain of calls per value) was a third of the load's Python time. Each value
    still goes through its column type's bind processor first, as SQLAlchemy would send it."""
    if not rows:
        return []
    columns = [c for c in table.columns if c.name in rows[0]]
    processors = [c.type.bind_processor(_MYSQL) for c in columns]
    names = ", ".join(f"`{c.name}`" for c in columns)
    statements = []
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
        statements.append(f"INSERT INTO `{table.name}` ({names}) VALUES " + ",".join(values))
    return statements


def _write(
    factory: sessionmaker[Session],
    company_id: uuid.UUID,
    tables: list[tuple[Table, list[str] | list[dict[str, Any]]]],
    deltas: totals.Deltas,
    head: tuple[int, str],
) -> None:
    """One batch in one transaction: its rows, its totals, and the chain head moved past it."""
    with session_scope(factory) as session:
        for table, rows in tables:
            if rows and isinstance(rows[0], str):
                cursor = session.connection().connection.cursor()
                try:
                    for statement in rows:
                        cursor.execute(statement)
                finally:
                    cursor.close()
            elif rows:
                session.execute(insert(table), cast(list[dict[str, Any]], rows))
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
