"""The accounting export: the ledger's journal lines, streamed or written to a file by a worker,
listed, and marked exported; the company's accounts and closed periods."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from spendtrackr.apps.ledger import flows as ledger_flows
from spendtrackr.apps.ledger import service as ledger_service
from spendtrackr.apps.ledger.models import ExportStatus
from spendtrackr.apps.ledger.schemas import (
    AccountingSettingsRead,
    AccountingSettingsWrite,
    ExportCreate,
    ExportRead,
    LedgerLineRead,
    Marked,
    MarkExported,
    PeriodsRead,
)
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser, FinanceUser, ReadSession, ReadSessions
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import NowDep, StorageDep
from spendtrackr.core.errors import Conflict
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep, SyncPageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import DateRangeDep, check_date_range

router = APIRouter(
    dependencies=SIGNED_IN, route_class=JSONRoute, tags=["reports"], responses=errors(401, 403)
)


Layout = Annotated[
    str,
    Query(
        pattern="^(journal|qbo|xero|netsuite|csv|json)$",
        description="The layout: `journal` (SpendTrackr's own), `qbo` (QuickBooks Online journal "
        "entries import), `xero` (Xero manual journals import), `netsuite` (a NetSuite journal "
        "CSV import). On the .csv path, `csv` and `json` are the journal layout as CSV or JSON.",
    ),
]


def _export(
    sessions: ReadSessions,
    user: FinanceUser,
    dates: DateRangeDep,
    only_unexported: bool,
    layout: str,
    as_json: bool,
) -> StreamingResponse:
    f = ledger_service.ExportFilter(
        company_id=user.company_id,
        date_from=dates.date_from,
        date_to=dates.date_to,
        only_unexported=only_unexported,
    )
    lines = ledger_service.iter_lines(sessions, f)
    if as_json:
        return StreamingResponse(
            ledger_service.json_stream(lines, layout), media_type="application/json"
        )
    return StreamingResponse(
        ledger_service.csv_stream(lines, layout),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="accounting-{layout}.csv"'},
    )


Unexported = Annotated[bool, Query(description="Only lines not yet marked exported")]


@router.get(
    "/exports/accounting.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}, **errors(422)},
)
def accounting_export(
    sessions: ReadSessions,
    user: FinanceUser,
    dates: DateRangeDep,
    only_unexported: Unexported = False,
    format: Layout = "journal",
) -> StreamingResponse:
    """The ledger's journal lines (a debit and a credit per approval or reimbursement) by entry
    date, streamed as RFC 4180 CSV with formula-looking cells neutralised, in SpendTrackr's own
    layout or one an accounting system imports as it is (`?format=qbo|xero|netsuite`). Lines
    have stable ids, so exporting twice is safe."""
    layout = "journal" if format in ("csv", "json") else format
    return _export(sessions, user, dates, only_unexported, layout, as_json=format == "json")


@router.get(
    "/exports/accounting.json",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}}, **errors(422)},
)
def accounting_export_json(
    sessions: ReadSessions,
    user: FinanceUser,
    dates: DateRangeDep,
    only_unexported: Unexported = False,
    format: Layout = "journal",
) -> StreamingResponse:
    """The same lines as JSON (`{"items": [...]}`): the journal's fields, or the chosen
    layout's columns as keys."""
    layout = "journal" if format in ("csv", "json") else format
    return _export(sessions, user, dates, only_unexported, layout, as_json=True)


@router.post("/exports/accounting/mark-exported", response_model=Marked, responses=errors(422))
def mark_exported(body: MarkExported, session: SessionDep, user: FinanceUser) -> Marked:
    """Set `exported_at` on the lines not yet exported, in a date range or by id."""
    check_date_range(body.date_from, body.date_to)
    f = ledger_service.ExportFilter(
        company_id=user.company_id, date_from=body.date_from, date_to=body.date_to
    )
    return Marked(marked=ledger_service.mark_exported(session, f, line_ids=body.line_ids))


@router.get("/ledger-lines", response_model=Page[LedgerLineRead], responses=errors(422))
def list_ledger_lines(
    session: ReadSession,
    user: FinanceUser,
    dates: DateRangeDep,
    page: SyncPageDep,
    only_unexported: Annotated[
        bool, Query(description="Only lines not yet marked exported")
    ] = False,
) -> Page[LedgerLineRead]:
    """The export's journal lines as a list (finance, admins): by entry date, or by cursor
    (`updated_since`, `cursor`) in the order they were posted, for a ledger kept in step."""
    f = ledger_service.ExportFilter(
        company_id=user.company_id,
        date_from=dates.date_from,
        date_to=dates.date_to,
        only_unexported=only_unexported,
    )
    listed = ledger_service.list_lines(session, f, page)
    return listed.page(
        [LedgerLineRead.model_validate(ledger_service.line_json(r)) for r in listed.rows]
    )


@router.post("/exports", response_model=ExportRead, status_code=202, responses=errors(422))
def request_export(body: ExportCreate, session: SessionDep, user: FinanceUser) -> ExportRead:
    """Ask for the accounting export as a file a worker writes (finance, admins): poll
    `GET /exports/{id}` or wait for the `export.ready` event, then download `file_url`. The
    same lines as `GET /exports/accounting.csv`, for ranges too large to wait on."""
    check_date_range(body.date_from, body.date_to)
    export = ledger_service.create_export(
        session,
        company_id=user.company_id,
        requested_by=user.id,
        format=body.format,
        date_from=body.date_from,
        date_to=body.date_to,
        only_unexported=body.only_unexported,
    )
    return ExportRead.model_validate(export)


@router.get("/exports", response_model=Page[ExportRead])
def list_exports(session: ReadSession, user: FinanceUser, page: PageDep) -> Page[ExportRead]:
    total, rows = ledger_service.list_exports(session, company_id=user.company_id, page=page)
    return Page(total=total, items=[ExportRead.model_validate(e) for e in rows])


@router.get("/exports/{export_id}", response_model=ExportRead, responses=errors(404))
def get_export(export_id: uuid.UUID, session: SessionDep, user: FinanceUser) -> ExportRead:
    return ExportRead.model_validate(
        ledger_service.get_export_or_404(session, company_id=user.company_id, export_id=export_id)
    )


@router.get(
    "/exports/{export_id}/file",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}, **errors(404, 409)},
)
def download_export(
    export_id: uuid.UUID, session: SessionDep, user: FinanceUser, storage: StorageDep
) -> StreamingResponse:
    """The export's file, once `ready` (409 `export_not_ready` before)."""
    export = ledger_service.get_export_or_404(
        session, company_id=user.company_id, export_id=export_id
    )
    if export.status is not ExportStatus.ready or export.storage_key is None:
        raise Conflict(f"The export is {export.status}", code="export_not_ready")
    media = "application/json" if export.format == "json" else "text/csv; charset=utf-8"
    return StreamingResponse(
        storage.iter_chunks(export.storage_key),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="accounting-{export.id}.{export.format}"',
            "Content-Length": str(export.size),
        },
    )


# --- the company's accounts and closed periods -------------------------------------------------

accounting = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/accounting",
    tags=["accounting"],
    responses=errors(401, 403),
)

Period = Annotated[str, Path(description="A month, `YYYY-MM`", examples=["2026-10"])]


@accounting.get("/settings", response_model=AccountingSettingsRead)
def get_accounting_settings(session: SessionDep, user: FinanceUser) -> AccountingSettingsRead:
    """The accounts the company's journals post to (finance, admins): its own, else the
    server's defaults (`defaults` names those)."""
    return ledger_flows.get_settings_of(session, actor=user)


@accounting.put("/settings", response_model=AccountingSettingsRead, responses=errors(422))
def put_accounting_settings(
    body: AccountingSettingsWrite, session: SessionDep, user: FinanceUser
) -> AccountingSettingsRead:
    """Replace the company's accounts (finance, admins): each one sent replaces the server's
    default for this company, each one left out or null goes back to it. A category's
    `gl_code` still wins over the expense account; journals already posted keep theirs."""
    return ledger_flows.put_settings(session, actor=user, body=body)


@accounting.get("/periods", response_model=PeriodsRead)
def get_periods(session: SessionDep, user: FinanceUser) -> PeriodsRead:
    """How far the books are closed."""
    return ledger_flows.get_periods(session, actor=user)


@accounting.post("/periods/{period}/close", response_model=PeriodsRead, responses=errors(422))
def close_period(
    period: Period, session: SessionDep, user: FinanceUser, now: NowDep
) -> PeriodsRead:
    """Close the books through the end of this month, and every earlier month with it (finance,
    admins); the month must have ended (422 `period_not_ended`). Afterwards, a spend dated in a
    closed month cannot be submitted, edited or cancelled (409 `period_closed`); what still has
    to be booked for one (its approval, a reimbursement, tax read off its receipt) is posted on
    the first open day instead. Closing a closed month changes nothing."""
    return ledger_flows.close_period(session, actor=user, period=period, now=now)


@accounting.post("/periods/{period}/reopen", response_model=PeriodsRead, responses=errors(422))
def reopen_period(period: Period, session: SessionDep, user: AdminUser) -> PeriodsRead:
    """Open this month again, and every later one (admins): the books stay closed through the
    end of the month before."""
    return ledger_flows.reopen_period(session, actor=user, period=period)
