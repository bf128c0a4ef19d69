"""The journal entries of a spend's status change, written in the same transaction as the change
(the ledger is written as money moves, not at export time); and the export jobs a worker writes."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO, cast

from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.catalog import service as catalog_service
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.ledger import service as ledger_service
from spendtrackr.apps.ledger.models import Export, ExportStatus
from spendtrackr.apps.spends.models import Spend, SpendSource, SpendStatus
from spendtrackr.apps.users.models import User
from spendtrackr.core.config import get_settings
from spendtrackr.core.db import session_scope, utcnow
from spendtrackr.core.storage import Storage

logger = logging.getLogger(__name__)


def _accounts() -> ledger_service.Accounts:
    settings = get_settings()
    return ledger_service.Accounts(
        default_expense=settings.ledger_default_expense_account,
        card_liability=settings.ledger_card_liability_account,
        employee_payable=settings.ledger_employee_payable_account,
        cash=settings.ledger_cash_account,
    )


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
    )


def post_status(session: Session, spend: Spend, to: SpendStatus) -> None:
    """An approved spend is booked as an expense (against the card's liability or what is owed
    to the employee); a reimbursed one settles what was owed from cash. Other statuses post
    nothing."""
    if to is SpendStatus.approved:
        gl_code = (
            catalog_service.get_or_404(
                session, Category, company_id=spend.company_id, item_id=spend.category_id
            ).gl_code
            if spend.category_id
            else None
        )
        ledger_service.post_approval(
            session,
            _posting(session, spend, spend.spend_date),
            expense_account=gl_code,
            card=spend.source == SpendSource.card,
            accounts=_accounts(),
        )
    elif to is SpendStatus.reimbursed:
        ledger_service.post_reimbursement(
            session, _posting(session, spend, utcnow().date()), accounts=_accounts()
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
