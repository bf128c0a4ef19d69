from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from spendtrackr.apps.payouts import flows
from spendtrackr.apps.payouts.schemas import (
    BankAccountRead,
    BankAccountWrite,
    LineReturn,
    PayoutCreate,
    PayoutRead,
    PayoutSettingsRead,
    PayoutSettingsWrite,
)
from spendtrackr.apps.users.deps import SIGNED_IN, CurrentUser, FinanceUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import NowDep, SettingsDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute

bank_account = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/users/me/bank-account",
    tags=["payouts"],
    responses=errors(401),
)


@bank_account.put("", response_model=BankAccountRead, responses=errors(409, 422))
def put_bank_account(
    body: BankAccountWrite, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> BankAccountRead:
    """Where you are reimbursed: `{holder_name, iban[, bic]}` (IBAN checksum and country format,
    BIC checked; the BIC is derived from the IBAN when the bank is known) or `{holder_name,
    routing_number, account_number, account_type}` (the routing number's check digit). Kept
    encrypted; shown masked. 422 `invalid_iban`, `invalid_bic`, `invalid_routing_number`; 409
    `in_payout` while a batch is paying it."""
    return flows.put_bank_account(session, actor=user, body=body, key=settings.bank_key)


@bank_account.get("", response_model=BankAccountRead, responses=errors(404))
def get_bank_account(session: SessionDep, user: CurrentUser) -> BankAccountRead:
    return flows.get_bank_account(session, actor=user)


@bank_account.delete("", status_code=204, response_class=Response, responses=errors(404, 409))
def delete_bank_account(session: SessionDep, user: CurrentUser) -> Response:
    flows.delete_bank_account(session, actor=user)
    return Response(status_code=204)


router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/payouts",
    tags=["payouts"],
    responses=errors(401, 403),
)


@router.get("/settings", response_model=PayoutSettingsRead)
def get_payout_settings(session: SessionDep, user: FinanceUser) -> PayoutSettingsRead:
    return flows.get_settings_of(session, actor=user)


@router.put("/settings", response_model=PayoutSettingsRead, responses=errors(422))
def put_payout_settings(
    body: PayoutSettingsWrite, session: SessionDep, user: FinanceUser
) -> PayoutSettingsRead:
    """The company's paying accounts (finance, admins): `sepa {name, iban, bic}` for SEPA
    batches, `ach {company_name, company_id, routing_number, bank_name}` for NACHA files."""
    return flows.put_settings(session, actor=user, body=body)


@router.post("", response_model=PayoutRead, status_code=201, responses=errors(422))
def create_payout(
    body: PayoutCreate, session: SessionDep, user: FinanceUser, now: NowDep
) -> PayoutRead:
    """A batch of every approved, unreimbursed out-of-pocket spend in no other batch, one line
    per employee (finance, admins; your own spends wait for someone else's batch). Employees
    without an account the method reaches are listed in `skipped`. 422 `nothing_to_pay`,
    `payout_account_missing`, `currency_not_supported`."""
    return flows.create_payout(session, actor=user, body=body, now=now)


@router.get("", response_model=Page[PayoutRead])
def list_payouts(session: SessionDep, user: FinanceUser, page: PageDep) -> Page[PayoutRead]:
    total, items = flows.list_payouts(session, actor=user, page=page)
    return Page(total=total, items=items)


@router.get("/{payout_id}", response_model=PayoutRead, responses=errors(404))
def get_payout(payout_id: uuid.UUID, session: SessionDep, user: FinanceUser) -> PayoutRead:
    return flows.get_payout(session, actor=user, payout_id=payout_id)


@router.get(
    "/{payout_id}/file",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}, "text/plain": {}}}, **errors(404, 409)},
)
def payout_file(
    payout_id: uuid.UUID, session: SessionDep, user: FinanceUser, settings: SettingsDep, now: NowDep
) -> Response:
    """The file for the bank: a SEPA credit transfer (pain.001.001.09 XML) or a NACHA ACH file
    of PPD credits, with the lines not returned."""
    content, media_type, name = flows.bank_file(
        session, actor=user, payout_id=payout_id, key=settings.bank_key, now=now
    )
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/{payout_id}/paid", response_model=PayoutRead, responses=errors(404, 409))
def mark_paid(
    payout_id: uuid.UUID, session: SessionDep, user: FinanceUser, now: NowDep
) -> PayoutRead:
    """The bank paid the batch: its pending lines are paid and their spends reimbursed (the
    ledger settles the payable from cash). 409 `payout_settled` the second time."""
    return flows.mark_paid(session, actor=user, payout_id=payout_id, now=now)


@router.post(
    "/{payout_id}/lines/{line_id}/return", response_model=PayoutRead, responses=errors(404, 409)
)
def return_line(
    payout_id: uuid.UUID,
    line_id: uuid.UUID,
    body: LineReturn,
    session: SessionDep,
    user: FinanceUser,
) -> PayoutRead:
    """The bank returned one transfer: its spends leave the batch for a later one. 409
    `line_settled` once paid or returned."""
    return flows.return_line(
        session, actor=user, payout_id=payout_id, line_id=line_id, reason=body.reason
    )
