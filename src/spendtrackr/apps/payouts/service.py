"""Bank accounts (numbers sealed at rest) and payout batches: their rows and locks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from spendtrackr.apps.payouts.models import BankAccount, LineStatus, Payout, PayoutLine
from spendtrackr.apps.spends.models import Spend, SpendSource, SpendStatus
from spendtrackr.core.db import get_in_company_or_404
from spendtrackr.core.pagination import PageParams, paginate

PAYOUT_NOT_FOUND = "Payout not found"


def seal(key: bytes, value: str) -> str:
    return Fernet(key).encrypt(value.encode()).decode()


def unseal(key: bytes, sealed: str) -> str | None:
    """None when the key changed since (the details must be entered again)."""
    try:
        return Fernet(key).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


def bank_account_of(session: Session, *, user_id: uuid.UUID) -> BankAccount | None:
    return session.scalars(select(BankAccount).where(BankAccount.user_id == user_id)).one_or_none()


def bank_accounts_of(
    session: Session, *, company_id: uuid.UUID, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, BankAccount]:
    rows = session.scalars(
        select(BankAccount).where(
            BankAccount.company_id == company_id, BankAccount.user_id.in_(list(user_ids))
        )
    )
    return {row.user_id: row for row in rows}


def payable_spends(session: Session, *, company_id: uuid.UUID, besides: uuid.UUID) -> list[Spend]:
    """Approved out-of-pocket spends in no batch, locked (read again under the lock: one a
    concurrent batch took is left out), but `besides`' own (nobody pays themselves)."""
    s = Spend
    stmt = (
        select(s)
        .where(
            s.company_id == company_id,
            s.status == SpendStatus.approved,
            s.source == SpendSource.manual,
            s.payout_line_id.is_(None),
            s.user_id != besides,
            s.base_amount > 0,
        )
        .order_by(s.user_id, s.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return [spend for spend in session.scalars(stmt) if spend.payout_line_id is None]


def get_payout_or_404(
    session: Session, *, company_id: uuid.UUID, payout_id: uuid.UUID, for_update: bool = False
) -> Payout:
    return get_in_company_or_404(
        session, Payout, payout_id, company_id, detail=PAYOUT_NOT_FOUND, for_update=for_update
    )


def lines_of(session: Session, *, payout_id: uuid.UUID) -> list[PayoutLine]:
    return list(
        session.scalars(
            select(PayoutLine).where(PayoutLine.payout_id == payout_id).order_by(PayoutLine.id)
        )
    )


def spends_of(session: Session, *, company_id: uuid.UUID, line: PayoutLine) -> list[Spend]:
    ids = [uuid.UUID(i) for i in line.spend_ids]
    return list(
        session.scalars(
            select(Spend)
            .where(Spend.company_id == company_id, Spend.id.in_(ids))
            .order_by(Spend.id)
            .with_for_update()
        )
    )


def list_payouts(
    session: Session, *, company_id: uuid.UUID, page: PageParams
) -> tuple[int, list[Payout]]:
    stmt = select(Payout).where(Payout.company_id == company_id)
    return paginate(session, stmt.order_by(Payout.created_at.desc(), Payout.id), page)


def pending_line_for(session: Session, *, bank_account_id: uuid.UUID) -> bool:
    return (
        session.scalar(
            select(PayoutLine.id)
            .where(
                PayoutLine.bank_account_id == bank_account_id,
                PayoutLine.status == LineStatus.pending,
            )
            .limit(1)
        )
        is not None
    )
