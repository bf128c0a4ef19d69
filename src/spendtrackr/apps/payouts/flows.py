"""Reimbursement payouts: employees' bank details, batches of approved out-of-pocket spends grouped
per employee, the bank file, and the spends reimbursed only when their line is paid.

A spend is in one batch at most: building a batch locks the payable spends (`FOR UPDATE`, read
again under the lock) and marks each with its line, so a concurrent batch leaves them out. A line
the bank returns frees its spends for a later batch.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.payouts import formats
from spendtrackr.apps.payouts import service as payouts_service
from spendtrackr.apps.payouts.models import (
    AccountKind,
    BankAccount,
    LineStatus,
    Payout,
    PayoutLine,
    PayoutMethod,
    PayoutStatus,
)
from spendtrackr.apps.payouts.schemas import (
    BankAccountRead,
    BankAccountWrite,
    PayoutCreate,
    PayoutLineRead,
    PayoutRead,
    PayoutSettingsRead,
    PayoutSettingsWrite,
    Skipped,
)
from spendtrackr.apps.spends import flows as spend_flows
from spendtrackr.apps.users.models import User
from spendtrackr.core.errors import Conflict, NotFound, ValidationFailed

# --- bank details -----------------------------------------------------------------------------


def _iban(value: str, field: str = "iban") -> IBAN:
    try:
        return IBAN(value)
    except SchwiftyException as exc:
        raise ValidationFailed(f"{field}: not a valid IBAN ({exc})", code="invalid_iban") from None


def _bic(value: str, field: str = "bic") -> BIC:
    try:
        return BIC(value)
    except SchwiftyException as exc:
        raise ValidationFailed(f"{field}: not a valid BIC ({exc})", code="invalid_bic") from None


def put_bank_account(
    session: Session, *, actor: User, body: BankAccountWrite, key: bytes
) -> BankAccountRead:
    """Set the caller's bank details, checked (IBAN checksum and country format, BIC, or the
    ABA routing number's check digit), the number sealed at rest."""
    fields: dict[str, Any]
    if body.iban is not None:
        iban = _iban(body.iban)
        bic = _bic(body.bic) if body.bic else iban.bic
        fields = {
            "kind": AccountKind.iban,
            "number_enc": payouts_service.seal(key, iban.compact),
            "last4": iban.compact[-4:],
            "country": iban.country_code,
            "bic": bic.compact if bic is not None else None,
            "routing_number": None,
            "account_type": None,
        }
    else:
        assert body.routing_number is not None
        assert body.account_number is not None
        if not formats.aba_valid(body.routing_number):
            raise ValidationFailed(
                "routing_number: the check digit does not match", code="invalid_routing_number"
            )
        fields = {
            "kind": AccountKind.us,
            "number_enc": payouts_service.seal(key, body.account_number),
            "last4": body.account_number[-4:],
            "country": "US",
            "bic": None,
            "routing_number": body.routing_number,
            "account_type": body.account_type,
        }
    fields["holder_name"] = body.holder_name
    account = payouts_service.bank_account_of(session, user_id=actor.id)
    if account is None:
        account = BankAccount(id=uuid.uuid4(), company_id=actor.company_id, user_id=actor.id)
        session.add(account)
    elif payouts_service.pending_line_for(session, bank_account_id=account.id):
        raise Conflict(
            "The account is in a payout batch: change it once the batch is settled",
            code="in_payout",
        )
    for name, value in fields.items():
        setattr(account, name, value)
    session.flush()
    audit.record_change(
        session,
        account,
        "bank_account.updated",
        actor_id=actor.id,
        metadata={"kind": account.kind, "last4": account.last4},
    )
    return _read_account(account)


def _read_account(account: BankAccount) -> BankAccountRead:
    return BankAccountRead(
        kind=account.kind,
        holder_name=account.holder_name,
        account=("*" * 4) + account.last4,
        country=account.country,
        bic=account.bic,
        routing_number=account.routing_number,
        account_type=account.account_type,
        updated_at=account.updated_at,
    )


def get_bank_account(session: Session, *, actor: User) -> BankAccountRead:
    account = payouts_service.bank_account_of(session, user_id=actor.id)
    if account is None:
        raise NotFound("No bank account on file", code="no_bank_account")
    return _read_account(account)


def delete_bank_account(session: Session, *, actor: User) -> None:
    account = payouts_service.bank_account_of(session, user_id=actor.id)
    if account is None:
        raise NotFound("No bank account on file", code="no_bank_account")
    if payouts_service.pending_line_for(session, bank_account_id=account.id):
        raise Conflict(
            "The account is in a payout batch: remove it once the batch is settled",
            code="in_payout",
        )
    audit.record_change(session, account, "bank_account.deleted", actor_id=actor.id)
    session.delete(account)


# --- the company's paying accounts ----------------------------------------------------------------


def put_settings(session: Session, *, actor: User, body: PayoutSettingsWrite) -> PayoutSettingsRead:
    company = companies_service.get_company_or_404(session, actor.company_id, for_update=True)
    accounts: dict[str, Any] = {}
    if body.sepa is not None:
        iban = _iban(body.sepa.iban, "sepa.iban")
        bic = _bic(body.sepa.bic, "sepa.bic") if body.sepa.bic else iban.bic
        accounts["sepa"] = {
            "name": body.sepa.name,
            "iban": iban.compact,
            "bic": bic.compact if bic is not None else None,
        }
    if body.ach is not None:
        if not formats.aba_valid(body.ach.routing_number):
            raise ValidationFailed(
                "ach.routing_number: the check digit does not match",
                code="invalid_routing_number",
            )
        accounts["ach"] = body.ach.model_dump()
    company.payout_accounts = accounts or None
    audit.record_change(
        session,
        company,
        "payout.settings_updated",
        actor_id=actor.id,
        metadata={"methods": sorted(accounts)},
    )
    return PayoutSettingsRead(sepa=accounts.get("sepa"), ach=accounts.get("ach"))


def get_settings_of(session: Session, *, actor: User) -> PayoutSettingsRead:
    accounts = companies_service.get_company_or_404(session, actor.company_id).payout_accounts
    accounts = accounts or {}
    return PayoutSettingsRead(sepa=accounts.get("sepa"), ach=accounts.get("ach"))


# --- batches ------------------------------------------------------------------------------------

# What each method pays in, and which employees' accounts it can reach.
METHODS: dict[PayoutMethod, tuple[str, AccountKind, str]] = {
    PayoutMethod.sepa: ("EUR", AccountKind.iban, "sepa"),
    PayoutMethod.nacha: ("USD", AccountKind.us, "ach"),
}


def create_payout(
    session: Session, *, actor: User, body: PayoutCreate, now: datetime
) -> PayoutRead:
    """A batch of every approved, unreimbursed out-of-pocket spend in no other batch, one line
    per employee with an account the method reaches (the others are `skipped`); the caller's
    own spends are left for someone else's batch."""
    currency, kind, settings_key = METHODS[body.method]
    company = companies_service.get_company_or_404(session, actor.company_id)
    if company.base_currency != currency:
        raise ValidationFailed(
            f"{body.method} pays in {currency}; the company's books are in {company.base_currency}",
            code="currency_not_supported",
        )
    debtor = (company.payout_accounts or {}).get(settings_key)
    if debtor is None:
        raise ValidationFailed(
            f"set the company's {settings_key} account first (PUT /payouts/settings)",
            code="payout_account_missing",
        )
    spends = payouts_service.payable_spends(session, company_id=company.id, besides=actor.id)
    by_user: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for spend in spends:
        by_user[spend.user_id].append(spend)
    accounts = payouts_service.bank_accounts_of(session, company_id=company.id, user_ids=by_user)
    today = now.astimezone(ZoneInfo(company.timezone)).date()
    payout = Payout(
        id=uuid.uuid4(),
        company_id=company.id,
        method=body.method,
        status=PayoutStatus.open,
        currency=currency,
        total=Decimal(0),
        execution_date=body.execution_date or today + timedelta(days=1),
        created_by=actor.id,
        debtor=debtor,
    )
    lines: list[PayoutLine] = []
    skipped: list[Skipped] = []
    for user_id, theirs in by_user.items():
        account = accounts.get(user_id)
        if account is None or account.kind != kind:
            skipped.append(
                Skipped(user_id=user_id, reason="no_bank_account", spend_count=len(theirs))
            )
            continue
        lines.append(
            PayoutLine(
                id=uuid.uuid4(),
                company_id=company.id,
                payout_id=payout.id,
                user_id=user_id,
                bank_account_id=account.id,
                amount=sum((s.base_amount for s in theirs), Decimal(0)),
                spend_ids=[str(s.id) for s in theirs],
                status=LineStatus.pending,
            )
        )
    if not lines:
        raise ValidationFailed(
            "nothing to pay: no approved out-of-pocket spend of someone with a "
            f"{kind.value} account is waiting",
            code="nothing_to_pay",
        )
    payout.total = sum((line.amount for line in lines), Decimal(0))
    session.add(payout)
    session.add_all(lines)
    session.flush()
    for line in lines:
        for spend in by_user[line.user_id]:
            spend.payout_line_id = line.id
    audit.record_change(
        session,
        payout,
        "payout.created",
        actor_id=actor.id,
        metadata={
            "method": payout.method,
            "total": payout.total,
            "lines": len(lines),
            "spends": sum(len(line.spend_ids) for line in lines),
        },
    )
    return _read(payout, lines, skipped)


def _read(
    payout: Payout, lines: list[PayoutLine], skipped: list[Skipped] | None = None
) -> PayoutRead:
    return PayoutRead.model_validate(payout).model_copy(
        update={
            "lines": [
                PayoutLineRead.model_validate(line).model_copy(update={"currency": payout.currency})
                for line in lines
            ],
            "skipped": skipped or [],
            "file_url": f"/payouts/{payout.id}/file",
        }
    )


def get_payout(session: Session, *, actor: User, payout_id: uuid.UUID) -> PayoutRead:
    payout = payouts_service.get_payout_or_404(
        session, company_id=actor.company_id, payout_id=payout_id
    )
    return _read(payout, payouts_service.lines_of(session, payout_id=payout.id))


def list_payouts(session: Session, *, actor: User, page: Any) -> tuple[int, list[PayoutRead]]:
    total, rows = payouts_service.list_payouts(session, company_id=actor.company_id, page=page)
    return total, [_read(p, payouts_service.lines_of(session, payout_id=p.id)) for p in rows]


def bank_file(
    session: Session, *, actor: User, payout_id: uuid.UUID, key: bytes, now: datetime
) -> tuple[bytes, str, str]:
    """The batch's file for the bank: its pending lines. (content, media type, file name)"""
    payout = payouts_service.get_payout_or_404(
        session, company_id=actor.company_id, payout_id=payout_id
    )
    lines = [
        line
        for line in payouts_service.lines_of(session, payout_id=payout.id)
        if line.status is not LineStatus.returned
    ]
    transfers = []
    for line in lines:
        account = session.get(BankAccount, line.bank_account_id)
        assert account is not None
        number = payouts_service.unseal(key, account.number_enc)
        if number is None:
            raise Conflict(
                "A bank account cannot be read with the current BANK_DATA_KEY: its owner must "
                "enter it again",
                code="bank_account_unreadable",
            )
        transfers.append(
            formats.Transfer(
                reference=str(line.id),
                name=account.holder_name,
                amount=line.amount,
                account=number,
                bic=account.bic,
                routing_number=account.routing_number,
                savings=account.account_type == "savings",
            )
        )
    if payout.method is PayoutMethod.sepa:
        content = formats.sepa_credit_transfer(
            debtor=payout.debtor,
            execution_date=payout.execution_date,
            batch_id=payout.id.hex,
            transfers=transfers,
        )
        return content, "application/xml", f"payout-{payout.id}.xml"
    content = formats.nacha_ppd(
        originator=payout.debtor,
        execution_date=payout.execution_date,
        created=now,
        transfers=transfers,
    )
    return content, "text/plain", f"payout-{payout.id}.ach"


def mark_paid(session: Session, *, actor: User, payout_id: uuid.UUID, now: datetime) -> PayoutRead:
    """The bank paid the batch: every pending line is paid and its spends reimbursed (the
    ledger settles what was owed from cash). 409 `payout_settled` the second time."""
    payout = payouts_service.get_payout_or_404(
        session, company_id=actor.company_id, payout_id=payout_id, for_update=True
    )
    if payout.status is not PayoutStatus.open:
        raise Conflict("The payout was marked paid already", code="payout_settled")
    lines = payouts_service.lines_of(session, payout_id=payout.id)
    for line in lines:
        if line.status is not LineStatus.pending:
            continue
        line.status = LineStatus.paid
        for spend in payouts_service.spends_of(session, company_id=payout.company_id, line=line):
            spend_flows.reimburse_paid(session, spend=spend, actor_id=actor.id)
    payout.status = PayoutStatus.paid
    payout.paid_at = now
    audit.record_change(session, payout, "payout.paid", actor_id=actor.id)
    return _read(payout, lines)


def return_line(
    session: Session, *, actor: User, payout_id: uuid.UUID, line_id: uuid.UUID, reason: str
) -> PayoutRead:
    """The bank sent one transfer back: its spends leave the batch (a later one can take them);
    only a pending line can be returned (409 `line_settled`)."""
    payout = payouts_service.get_payout_or_404(
        session, company_id=actor.company_id, payout_id=payout_id, for_update=True
    )
    lines = payouts_service.lines_of(session, payout_id=payout.id)
    line = next((x for x in lines if x.id == line_id), None)
    if line is None:
        raise NotFound("Payout line not found")
    if line.status is not LineStatus.pending:
        raise Conflict(f"The line is {line.status}", code="line_settled")
    line.status = LineStatus.returned
    line.return_reason = reason
    for spend in payouts_service.spends_of(session, company_id=payout.company_id, line=line):
        spend.payout_line_id = None
    payout.total -= line.amount
    audit.record_change(
        session,
        payout,
        "payout.line_returned",
        actor_id=actor.id,
        metadata={"line_id": line.id, "user_id": line.user_id, "reason": reason},
    )
    return _read(payout, lines)
