"""The journal entries of a spend's status change, written in the same transaction as the change
(the ledger is written as money moves, not at export time); and the export jobs a worker writes."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO, cast
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.catalog import service as catalog_service
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.ledger import service as ledger_service
from spendtrackr.apps.ledger.models import Export, ExportStatus
from spendtrackr.apps.ledger.schemas import (
    AccountingSettingsRead,
    AccountingSettingsWrite,
    PeriodsRead,
)
from spendtrackr.apps.spends.models import Spend, SpendSource, SpendStatus
from spendtrackr.apps.teams import service as teams_service
from spendtrackr.apps.users.models import User
from spendtrackr.core.config import get_settings
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import session_scope, utcnow
from spendtrackr.core.errors import Conflict, ValidationFailed
from spendtrackr.core.storage import Storage

logger = logging.getLogger(__name__)


# --- the company's accounts and closed periods ---------------------------------------------------

# A company's own account for each role, by the key `Company.ledger_accounts` keeps it under.
ACCOUNT_ROLES = ("expense", "card_liability", "employee_payable", "cash", "tax")


def default_accounts() -> dict[str, str]:
    settings = get_settings()
    return {
        "expense": settings.ledger_default_expense_account,
        "card_liability": settings.ledger_card_liability_account,
        "employee_payable": settings.ledger_employee_payable_account,
        "cash": settings.ledger_cash_account,
        "tax": settings.ledger_tax_account,
    }


def accounts_of(company: Company) -> ledger_service.Accounts:
    chosen = {**default_accounts(), **(company.ledger_accounts or {})}
    return ledger_service.Accounts(
        default_expense=chosen["expense"],
        card_liability=chosen["card_liability"],
        employee_payable=chosen["employee_payable"],
        cash=chosen["cash"],
        tax=chosen["tax"],
    )


def open_day(company: Company, day: date) -> date:
    """The day an entry for `day` is booked on: itself, or the first day after the closed
    books (a correction goes to the next open period)."""
    closed = company.books_closed_through
    return day if closed is None or day > closed else closed + timedelta(days=1)


def check_open(company: Company, *days: date) -> None:
    """409 `period_closed` when any of `days` is in the closed books."""
    closed = company.books_closed_through
    if closed is not None and any(day <= closed for day in days):
        raise PeriodClosed(
            f"The books are closed through {closed.isoformat()}: nothing dated on or before it "
            "can be added or changed"
        )


class PeriodClosed(Conflict):
    code = "period_closed"


# --- posting ------------------------------------------------------------------------------------


def _posting(session: Session, spend: Spend, entry_date: date) -> ledger_service.Posting:
    employee = session.get(User, spend.user_id)
    vendor = (
        catalog_service.get_or_404(
            session, Vendor, company_id=spend.company_id, item_id=spend.vendor_id
        ).name
        if spend.vendor_id
        else ""
    )
    return ledger_service.Posting(
        spend_id=spend.id,
        company_id=spend.company_id,
        entry_date=entry_date,
        amount=spend.base_amount,
        currency=spend.base_currency,
        vendor=vendor,
        description=spend.description,
        employee=employee.full_name if employee else "",
        original_amount=spend.amount,
        original_currency=spend.currency,
        fx_rate=spend.fx_rate,
        department=_department(session, spend),
        tax=base_tax(spend),
    )


def _department(session: Session, spend: Spend) -> str:
    if spend.team_id is None:
        return ""
    team = teams_service.get_team_or_404(
        session, company_id=spend.company_id, team_id=spend.team_id
    )
    return team.gl_code or ""


def base_tax(spend: Spend) -> Decimal:
    """The spend's tax in the base currency, at the spend's own rate."""
    if not spend.tax_amount:
        return Decimal(0)
    if spend.currency == spend.base_currency:
        return spend.tax_amount
    return quantize(spend.tax_amount * spend.fx_rate, spend.base_currency)


def _expense_account(session: Session, spend: Spend) -> str | None:
    if not spend.category_id:
        return None
    return catalog_service.get_or_404(
        session, Category, company_id=spend.company_id, item_id=spend.category_id
    ).gl_code


def post_status(
    session: Session, spend: Spend, to: SpendStatus, *, company: Company | None = None
) -> None:
    """An approved spend is booked as an expense, its tax apart (against the card's liability
    or what is owed to the employee); a reimbursed one settles what was owed from cash. Other
    statuses post nothing. Entries dated in closed books go to the next open day. `company`:
    the spend's, already read under its shared lock (else it is read so here: a period closed
    meanwhile waits for this transaction)."""
    if to not in (SpendStatus.approved, SpendStatus.reimbursed):
        return
    company = company or companies_service.share_company(session, spend.company_id)
    accounts = accounts_of(company)
    if to is SpendStatus.approved:
        ledger_service.post_approval(
            session,
            _posting(session, spend, open_day(company, spend.spend_date)),
            expense_account=_expense_account(session, spend),
            card=spend.source == SpendSource.card,
            accounts=accounts,
        )
    else:
        ledger_service.post_reimbursement(
            session, _posting(session, spend, open_day(company, utcnow().date())), accounts=accounts
        )


def post_card_change(
    session: Session,
    spend: Spend,
    company: Company,
    *,
    base_delta: Decimal,
    amount_delta: Decimal,
    kind: str,
) -> None:
    """Book what changed on a card purchase after it was booked: a capture for more or less than
    was approved (`capture`), or money back (`refund`, a credit spend's own journal). On the
    spend's date, or the first open day."""
    posting = replace(
        _posting(session, spend, open_day(company, spend.spend_date)),
        amount=abs(base_delta),
        original_amount=abs(amount_delta),
        tax=Decimal(0),
    )
    ledger_service.post_card_change(
        session,
        posting,
        more=base_delta > 0,
        expense_account=_expense_account(session, spend),
        accounts=accounts_of(company),
        kind=kind,
    )


def post_tax_learnt(session: Session, spend: Spend, company: Company) -> None:
    """An approved spend's tax became known (its receipt was read): move it from the expense to
    the tax account, on the spend's date or the next open day."""
    posting = replace(
        _posting(session, spend, open_day(company, spend.spend_date)),
        amount=base_tax(spend),
        original_amount=spend.tax_amount or Decimal(0),
        tax=Decimal(0),
    )
    ledger_service.post_tax_reclass(
        session,
        posting,
        expense_account=_expense_account(session, spend),
        accounts=accounts_of(company),
    )


# --- export jobs ----------------------------------------------------------------------------------

EXPORT_ATTEMPTS = 3
EXPORTS_PREFIX = "exports/"


class _Counted:
    """Lines passed through, counted."""

    def __init__(self, lines: Iterator[Any]) -> None:
        self.lines = lines
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for line in self.lines:
            self.count += 1
            yield line


def run_export(
    factory: sessionmaker[Session],
    *,
    storage: Storage,
    now: datetime | None = None,
    stale: timedelta = timedelta(minutes=15),
) -> int:
    """Write one waiting export's file, if any (1: one was taken). The lines are read in
    batches of their own, the file is stored, and only then is the export `ready` (the
    `export.ready` event): a worker that dies on the way leaves it to be taken again."""
    at = now or utcnow()
    with session_scope(factory) as session:
        export = ledger_service.claim_export(session, now=at, stale=stale)
        if export is None:
            return 0
        export_id, attempt, fmt = export.id, export.attempts, export.format
        filter_ = ledger_service.export_filter(export)
        key = f"{EXPORTS_PREFIX}{export.company_id}/{export.id}-{attempt}.{fmt}"
    lines = _Counted(ledger_service.iter_lines(factory, filter_))
    stream = (
        ledger_service.json_stream(iter(lines))
        if fmt == "json"
        else ledger_service.csv_stream(iter(lines))
    )
    try:
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as file:
            for chunk in stream:
                file.write(chunk)
            size = file.tell()
            file.seek(0)
            storage.put(key, cast(BinaryIO, file))
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        with session_scope(factory) as session:
            export = session.get(Export, export_id, with_for_update=True)
            assert export is not None
            failed = export.attempts >= EXPORT_ATTEMPTS
            export.status = ExportStatus.failed if failed else ExportStatus.pending
            export.error = f"{type(exc).__name__}: {exc}"[:500]
        return 1
    with session_scope(factory) as session:
        export = session.get(Export, export_id, with_for_update=True)
        assert export is not None
        export.status = ExportStatus.ready
        export.storage_key = key
        export.size = size
        export.line_count = lines.count
        export.finished_at = utcnow()
        export.error = None
        audit.record_change(
            session,
            export,
            "export.ready",
            actor_id=None,
            metadata={"format": fmt, "line_count": lines.count, "size": size},
        )
    return 1


def sweep_export_files(
    factory: sessionmaker[Session], *, storage: Storage, grace_seconds: float
) -> int:
    """Delete export files no export refers to (a worker died after storing one), once older
    than any export takes to write."""
    candidates = [k for k in storage.keys_older_than(grace_seconds) if k.startswith(EXPORTS_PREFIX)]
    with session_scope(factory) as session:
        kept = ledger_service.referenced_export_keys(session, candidates)
    for key in candidates:
        if key not in kept:
            storage.delete(key)
    return len(candidates) - len(kept)


# --- accounting settings and period close ---------------------------------------------------------

_SETTING_FIELDS = {f"{role}_account": role for role in ACCOUNT_ROLES}


def read_settings(company: Company) -> AccountingSettingsRead:
    own = company.ledger_accounts or {}
    chosen = {**default_accounts(), **own}
    return AccountingSettingsRead(
        **{field: chosen[role] for field, role in _SETTING_FIELDS.items()},
        defaults=[field for field, role in _SETTING_FIELDS.items() if role not in own],
        books_closed_through=company.books_closed_through,
    )


def get_settings_of(session: Session, *, actor: User) -> AccountingSettingsRead:
    return read_settings(companies_service.get_company_or_404(session, actor.company_id))


def put_settings(
    session: Session, *, actor: User, body: AccountingSettingsWrite
) -> AccountingSettingsRead:
    """Replace the company's accounts (the ones left out fall back to the server's). Journals
    already posted keep the accounts they were posted to."""
    company = companies_service.get_company_or_404(session, actor.company_id, for_update=True)
    before = company.ledger_accounts or {}
    chosen = {
        role: value
        for field, role in _SETTING_FIELDS.items()
        if (value := getattr(body, field)) is not None
    }
    company.ledger_accounts = chosen or None
    if chosen != before:
        audit.record_change(
            session,
            company,
            "accounting.settings_updated",
            actor_id=actor.id,
            metadata={"before": before, "after": chosen},
        )
    return read_settings(company)


def month_bounds(period: str) -> tuple[date, date]:
    """`YYYY-MM` -> its first and last day (422 `invalid_period` otherwise)."""
    try:
        if len(period) != 7:
            raise ValueError(period)
        first = date.fromisoformat(f"{period}-01")
    except ValueError:
        raise ValidationFailed(
            f"period must be a month as YYYY-MM, not {period[:20]!r}", code="invalid_period"
        ) from None
    if not 2000 <= first.year <= 2100:
        raise ValidationFailed("period must be between 2000-01 and 2100-12", code="invalid_period")
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


def periods_read(company: Company) -> PeriodsRead:
    closed = company.books_closed_through
    return PeriodsRead(
        books_closed_through=closed,
        first_open_day=None if closed is None else closed + timedelta(days=1),
    )


def get_periods(session: Session, *, actor: User) -> PeriodsRead:
    return periods_read(companies_service.get_company_or_404(session, actor.company_id))


def close_period(session: Session, *, actor: User, period: str, now: datetime) -> PeriodsRead:
    """Close the books through the end of `period` (every earlier month with it, as a closing
    date in QuickBooks or a lock date in Xero does). The month must have ended in the company's
    time zone (422 `period_not_ended`). The company row's lock waits for the spends being written
    (they hold it shared) and keeps new ones out until this commits."""
    _, last = month_bounds(period)
    company = companies_service.get_company_or_404(session, actor.company_id, for_update=True)
    today = now.astimezone(ZoneInfo(company.timezone)).date()
    if last >= today:
        raise ValidationFailed(
            f"{period} has not ended yet ({today.isoformat()} in {company.timezone})",
            code="period_not_ended",
        )
    before = company.books_closed_through
    if before is None or before < last:
        company.books_closed_through = last
        audit.record_change(
            session,
            company,
            "accounting.period_closed",
            actor_id=actor.id,
            metadata={"period": period, "closed_through": last, "before": before},
        )
    return periods_read(company)


def reopen_period(session: Session, *, actor: User, period: str) -> PeriodsRead:
    """Open `period` again, and every later month with it (admins): the books stay closed
    through the end of the month before."""
    first, _ = month_bounds(period)
    company = companies_service.get_company_or_404(session, actor.company_id, for_update=True)
    before = company.books_closed_through
    if before is not None and before >= first:
        company.books_closed_through = first - timedelta(days=1)
        audit.record_change(
            session,
            company,
            "accounting.period_reopened",
            actor_id=actor.id,
            metadata={
                "period": period,
                "closed_through": company.books_closed_through,
                "before": before,
            },
        )
    return periods_read(company)
