"""The ledger: balanced journal entries for approved and reimbursed spends, and their export."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.ledger.models import Export, ExportStatus, LedgerLine
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import get_in_company_or_404, session_scope, utcnow
from spendtrackr.core.pagination import Listed, PageParams, SyncParams, listing, paginate

CSV_COLUMNS = [
    "date",
    "journal_id",
    "spend_id",
    "account",
    "debit",
    "credit",
    "currency",
    "vendor",
    "description",
    "employee",
    "line_id",
    "original_amount",
    "original_currency",
    "fx_rate",
    "department",
]


@dataclass(frozen=True, slots=True)
class Accounts:
    """The accounts a company's journals use: its own (`PUT /accounting/settings`), else the
    server's defaults."""

    default_expense: str
    card_liability: str
    employee_payable: str
    cash: str
    tax: str


@dataclass(frozen=True, slots=True)
class Posting:
    """What a journal books: `amount` in the company's base currency, from the spend's
    `original_amount` in its own currency at `fx_rate`."""

    spend_id: uuid.UUID
    company_id: uuid.UUID
    entry_date: date
    amount: Decimal
    currency: str
    vendor: str
    description: str
    employee: str
    original_amount: Decimal
    original_currency: str
    fx_rate: Decimal
    department: str = ""  # the spend's team's GL code
    tax: Decimal = Decimal(0)  # the part of `amount` that is tax (base currency)


_LINES = insert(cast(Table, LedgerLine.__table__))
# What a journal's audit entry fingerprints, line by line (`journal_digest`).
DIGESTED = ("line_no", "account", "debit", "credit", "currency", "spend_id", "entry_date")


def journal_digest(lines: list[dict[str, Any]]) -> str:
    ordered = sorted(lines, key=lambda line: line["line_no"])
    return audit.digest(
        {f"{line['line_no']}.{name}": line[name] for line in ordered for name in DIGESTED}
    )


def journal_lines(
    posting: Posting,
    kind: str,
    debit_account: str,
    credit_account: str,
    *,
    at: Any = None,
    tax_account: str | None = None,
) -> tuple[uuid.UUID, list[dict[str, Any]]]:
    """A balanced journal for `posting` (its id and its lines, as rows of `ledger_line`): what
    `post_approval` and `post_reimbursement` write, and what a bulk load writes directly. With a
    `tax_account`, the posting's tax is debited there and the rest to `debit_account` (three
    lines). `at` sets the lines' `created_at` (default: the database's)."""
    journal_id = uuid.uuid4()
    amount = quantize(posting.amount, posting.currency)
    tax = quantize(posting.tax, posting.currency) if tax_account is not None else Decimal(0)
    common: dict[str, Any] = {
        "company_id": posting.company_id,
        "journal_id": journal_id,
        "spend_id": posting.spend_id,
        "kind": kind,
        "entry_date": posting.entry_date,
        "currency": posting.currency,
        "original_amount": quantize(posting.original_amount, posting.original_currency),
        "original_currency": posting.original_currency,
        "fx_rate": posting.fx_rate,
        "vendor": posting.vendor,
        "description": posting.description,
        "employee": posting.employee,
        "department": posting.department,
    }
    if at is not None:
        common["created_at"] = at
    sides = [(debit_account, amount - tax, Decimal(0))]
    if tax:
        sides.append((cast(str, tax_account), tax, Decimal(0)))
    sides.append((credit_account, Decimal(0), amount))
    lines = [
        {**common, "id": uuid.uuid4(), "line_no": n, "account": a, "debit": d, "credit": c}
        for n, (a, d, c) in enumerate(sides, start=1)
    ]
    return journal_id, lines


def _journal(
    session: Session,
    posting: Posting,
    kind: str,
    debit_account: str,
    credit_account: str,
    *,
    tax_account: str | None = None,
) -> uuid.UUID:
    # One plain INSERT of the lines, not entities for the unit of work: nothing reads them back
    # in the transaction that posts them (and the spend they point at is already written).
    journal_id, lines = journal_lines(
        posting, kind, debit_account, credit_account, tax_account=tax_account
    )
    session.execute(_LINES, lines)
    audit.record(
        session,
        company_id=posting.company_id,
        actor_id=None,
        action="ledger.posted",
        entity_type="journal",
        entity_id=journal_id,
        metadata={"spend_id": posting.spend_id, "kind": kind, "digest": journal_digest(lines)},
    )
    return journal_id


def post_approval(
    session: Session,
    posting: Posting,
    *,
    expense_account: str | None,
    card: bool,
    accounts: Accounts,
) -> uuid.UUID:
    """Debit the expense (the category's GL code) and the tax in it (the tax account), credit
    what is owed: the card issuer or the employee."""
    credit = accounts.card_liability if card else accounts.employee_payable
    return _journal(
        session,
        posting,
        "approval",
        expense_account or accounts.default_expense,
        credit,
        tax_account=accounts.tax if posting.tax else None,
    )


def post_card_change(
    session: Session,
    posting: Posting,
    *,
    more: bool,
    expense_account: str | None,
    accounts: Accounts,
    kind: str,
) -> uuid.UUID:
    """A card purchase booked already changed: captured for `more` (expense debited, card
    liability credited by the difference) or less, refunded or voided (the reverse)."""
    expense = expense_account or accounts.default_expense
    debit, credit = (
        (expense, accounts.card_liability) if more else (accounts.card_liability, expense)
    )
    return _journal(session, posting, kind, debit, credit)


def post_tax_reclass(
    session: Session, posting: Posting, *, expense_account: str | None, accounts: Accounts
) -> uuid.UUID:
    """Tax learnt after the spend was booked (read off its receipt): moved from the expense to
    the tax account. `posting.amount` is the tax."""
    return _journal(
        session, posting, "tax", accounts.tax, expense_account or accounts.default_expense
    )


def post_reimbursement(session: Session, posting: Posting, *, accounts: Accounts) -> uuid.UUID:
    """The employee is paid: the payable is settled from cash."""
    return _journal(session, posting, "reimbursement", accounts.employee_payable, accounts.cash)


# --- export ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportFilter:
    company_id: uuid.UUID
    date_from: date | None = None
    date_to: date | None = None
    only_unexported: bool = False


_EXPORTED = (
    LedgerLine.id,
    LedgerLine.entry_date,
    LedgerLine.journal_id,
    LedgerLine.line_no,
    LedgerLine.spend_id,
    LedgerLine.kind,
    LedgerLine.account,
    LedgerLine.debit,
    LedgerLine.credit,
    LedgerLine.currency,
    LedgerLine.original_amount,
    LedgerLine.original_currency,
    LedgerLine.fx_rate,
    LedgerLine.vendor,
    LedgerLine.description,
    LedgerLine.employee,
    LedgerLine.department,
    LedgerLine.exported_at,
)


def _stmt(f: ExportFilter) -> Any:
    # Plain rows, not ORM objects: no identity map to fill while streaming.
    stmt = select(*_EXPORTED).where(LedgerLine.company_id == f.company_id)
    if f.date_from is not None:
        stmt = stmt.where(LedgerLine.entry_date >= f.date_from)
    if f.date_to is not None:
        stmt = stmt.where(LedgerLine.entry_date <= f.date_to)
    if f.only_unexported:
        stmt = stmt.where(LedgerLine.exported_at.is_(None))
    return stmt


def iter_lines(
    factory: sessionmaker[Session], f: ExportFilter, *, batch: int = 2000
) -> Iterator[Any]:
    """Every matching line in (date, journal, line) order, read in keyset-paginated batches from
    its own session: constant memory, and no transaction held open across the whole download."""
    after: tuple[date, uuid.UUID, int] | None = None
    key = (LedgerLine.entry_date, LedgerLine.journal_id, LedgerLine.line_no)
    while True:
        with session_scope(factory) as session:
            stmt = _stmt(f)
            if after is not None:
                stmt = stmt.where(tuple_(*key) > tuple_(*after))
            rows = list(session.execute(stmt.order_by(*key).limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1]
        after = (last.entry_date, last.journal_id, last.line_no)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a leading quote makes them text."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _row(line: Any) -> list[str]:
    return [
        line.entry_date.isoformat(),
        str(line.journal_id),
        str(line.spend_id),
        safe_cell(line.account),
        str(quantize(line.debit, line.currency)),
        str(quantize(line.credit, line.currency)),
        line.currency,
        safe_cell(line.vendor),
        safe_cell(line.description),
        safe_cell(line.employee),
        str(line.id),
        str(quantize(line.original_amount, line.original_currency)),
        line.original_currency,
        _rate(line.fx_rate),
        safe_cell(line.department),
    ]


def _rate(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _amount(line: Any, value: Decimal) -> str:
    return str(quantize(value, line.currency))


def _side(line: Any, value: Decimal) -> str:
    """A debit or credit column: blank when this line is on the other side."""
    return _amount(line, value) if value else ""


def _us_date(line: Any) -> str:
    return str(line.entry_date.strftime("%m/%d/%Y"))


def _qbo(line: Any) -> list[str]:
    return [
        line.journal_id.hex[:20],  # QuickBooks' Journal No. holds 21 characters
        _us_date(line),
        safe_cell(line.account),
        safe_cell(line.description),
        _side(line, line.debit),
        _side(line, line.credit),
        safe_cell(line.vendor),
        safe_cell(line.department),
    ]


def _xero(line: Any) -> list[str]:
    return [
        f"SpendTrackr journal {line.journal_id}",  # one narration and date: one journal
        line.entry_date.strftime("%d/%m/%Y"),
        safe_cell(line.description),
        safe_cell(line.account),
        XERO_TAX_RATE,
        _amount(line, line.debit - line.credit),  # positive: debit; negative: credit
        XERO_TRACKING if line.department else "",
        safe_cell(line.department),
        "",
        "",
    ]


def _netsuite(line: Any) -> list[str]:
    return [
        f"spendtrackr-{line.journal_id}",
        _us_date(line),
        line.currency,
        f"SpendTrackr {line.kind} {line.spend_id}",
        safe_cell(line.account),
        _side(line, line.debit),
        _side(line, line.credit),
        safe_cell(line.description),
        safe_cell(line.employee),
        safe_cell(line.department),
    ]


@dataclass(frozen=True, slots=True)
class Layout:
    """An accounting system's import file: its columns, and a journal line as its row."""

    columns: tuple[str, ...]
    row: Callable[[Any], list[str]]


# Xero wants the name of one of the organisation's tax rates on every line; expenses booked
# from SpendTrackr carry no tax of their own.
XERO_TAX_RATE = "Tax Exempt"
# The tracking category a team's GL code is an option of (create it in Xero with those options).
XERO_TRACKING = "Department"
LAYOUTS: dict[str, Layout] = {
    "journal": Layout(tuple(CSV_COLUMNS), _row),
    # QuickBooks Online, Settings > Import data > Journal entries.
    "qbo": Layout(
        (
            "Journal No.",
            "Journal Date",
            "Account Name",
            "Description",
            "Debits",
            "Credits",
            "Name",
            "Class",  # read when class tracking is on: the team's GL code
        ),
        _qbo,
    ),
    # Xero, Accounting > Manual journals > Import (its template's header).
    "xero": Layout(
        (
            "*Narration",
            "*Date",
            "Description",
            "*AccountCode",
            "*TaxRate",
            "*Amount",
            "TrackingName1",
            "TrackingOption1",
            "TrackingName2",
            "TrackingOption2",
        ),
        _xero,
    ),
    # A NetSuite journal entry CSV import (one row a line, grouped by External ID).
    "netsuite": Layout(
        (
            "External ID",
            "Date",
            "Currency",
            "Memo",
            "Account",
            "Debit",
            "Credit",
            "Line Memo",
            "Name",
            "Department",
        ),
        _netsuite,
    ),
}


def csv_stream(lines: Iterator[Any], layout: str = "journal") -> Iterator[bytes]:
    shape = LAYOUTS[layout]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(shape.columns)
    for count, line in enumerate(lines, start=1):
        writer.writerow(shape.row(line))
        if count % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def line_json(line: Any) -> dict[str, Any]:
    return {
        "id": str(line.id),
        "date": line.entry_date.isoformat(),
        "journal_id": str(line.journal_id),
        "spend_id": str(line.spend_id),
        "kind": line.kind,
        "account": line.account,
        "debit": str(quantize(line.debit, line.currency)),
        "credit": str(quantize(line.credit, line.currency)),
        "currency": line.currency,
        "vendor": line.vendor,
        "description": line.description,
        "employee": line.employee,
        "original_amount": str(quantize(line.original_amount, line.original_currency)),
        "original_currency": line.original_currency,
        "fx_rate": _rate(line.fx_rate),
        "department": line.department,
        "exported_at": line.exported_at.isoformat() if line.exported_at else None,
    }


def json_stream(lines: Iterator[Any], layout: str = "journal") -> Iterator[bytes]:
    """`{"items": [...]}`: the journal's fields, or another layout's columns as keys."""
    shape = None if layout == "journal" else LAYOUTS[layout]
    yield b'{"items":['
    first = True
    for line in lines:
        item = (
            line_json(line)
            if shape is None
            else dict(zip(shape.columns, shape.row(line), strict=True))
        )
        yield (b"" if first else b",") + json.dumps(item).encode()
        first = False
    yield b"]}"


def mark_exported(session: Session, f: ExportFilter, *, line_ids: list[uuid.UUID] | None) -> int:
    stmt = update(LedgerLine).where(
        LedgerLine.company_id == f.company_id, LedgerLine.exported_at.is_(None)
    )
    if f.date_from is not None:
        stmt = stmt.where(LedgerLine.entry_date >= f.date_from)
    if f.date_to is not None:
        stmt = stmt.where(LedgerLine.entry_date <= f.date_to)
    if line_ids is not None:
        stmt = stmt.where(LedgerLine.id.in_(line_ids))
    result = session.execute(stmt.values(exported_at=utcnow()))
    return int(result.rowcount)  # type: ignore[attr-defined]


def journal_digests(session: Session, *, company_id: uuid.UUID) -> Iterator[tuple[str, str]]:
    """Every journal of the company with the digest of its lines as they are now."""
    stmt = (
        select(LedgerLine.journal_id, *(getattr(LedgerLine, name) for name in DIGESTED))
        .where(LedgerLine.company_id == company_id)
        .order_by(LedgerLine.journal_id, LedgerLine.line_no)
    )
    current: uuid.UUID | None = None
    lines: list[dict[str, Any]] = []
    for row in session.execute(stmt).yield_per(5000):
        if row.journal_id != current and current is not None:
            yield str(current), journal_digest(lines)
            lines = []
        current = row.journal_id
        lines.append({name: getattr(row, name) for name in DIGESTED})
    if current is not None:
        yield str(current), journal_digest(lines)


def list_lines(session: Session, f: ExportFilter, page: SyncParams) -> Listed:
    """The export's lines by entry date, or by cursor in the order they were posted (a line
    never changes but for being marked exported)."""
    stmt = (
        _stmt(f)
        .add_columns(LedgerLine.created_at)
        .order_by(LedgerLine.entry_date, LedgerLine.journal_id, LedgerLine.line_no)
    )
    return listing(session, stmt, page, updated=LedgerLine.created_at, ident=LedgerLine.id)


# --- export jobs ----------------------------------------------------------------------------------

EXPORT_NOT_FOUND = "Export not found"


def create_export(
    session: Session,
    *,
    company_id: uuid.UUID,
    requested_by: uuid.UUID,
    format: str,
    date_from: date | None,
    date_to: date | None,
    only_unexported: bool,
) -> Export:
    export = Export(
        id=uuid.uuid4(),
        company_id=company_id,
        requested_by=requested_by,
        format=format,
        date_from=date_from,
        date_to=date_to,
        only_unexported=only_unexported,
        status=ExportStatus.pending,
    )
    session.add(export)
    session.flush()
    audit.record_change(
        session,
        export,
        "export.requested",
        actor_id=requested_by,
        metadata={"format": format, "date_from": date_from, "date_to": date_to},
    )
    return export


def get_export_or_404(session: Session, *, company_id: uuid.UUID, export_id: uuid.UUID) -> Export:
    return get_in_company_or_404(session, Export, export_id, company_id, detail=EXPORT_NOT_FOUND)


def list_exports(
    session: Session, *, company_id: uuid.UUID, page: PageParams
) -> tuple[int, list[Export]]:
    stmt = select(Export).where(Export.company_id == company_id)
    return paginate(session, stmt.order_by(Export.created_at.desc(), Export.id), page)


def claim_export(session: Session, *, now: datetime, stale: timedelta) -> Export | None:
    """The oldest export waiting (or running longer than `stale`: its worker died), taken."""
    export = session.scalars(
        select(Export)
        .where(
            or_(
                Export.status == ExportStatus.pending,
                and_(Export.status == ExportStatus.running, Export.started_at < now - stale),
            )
        )
        .order_by(Export.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).one_or_none()
    if export is not None:
        export.status = ExportStatus.running
        export.started_at = now
        export.attempts += 1
    return export


def export_filter(export: Export) -> ExportFilter:
    return ExportFilter(
        company_id=export.company_id,
        date_from=export.date_from,
        date_to=export.date_to,
        only_unexported=export.only_unexported,
    )


def referenced_export_keys(session: Session, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return set(session.scalars(select(Export.storage_key).where(Export.storage_key.in_(keys))))
