from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity, StrEnumType


class AccountKind(StrEnum):
    iban = "iban"  # SEPA: IBAN + BIC
    us = "us"  # ACH: routing number + account number


class BankAccount(Entity):
    """Where an employee is reimbursed. The account number (an IBAN, or a US account number) is
    kept encrypted (`number_enc`); only its last four digits are shown."""

    __tablename__ = "bank_account"
    __audit_entity__ = "bank_account"
    __table_args__ = (UniqueConstraint("user_id"),)

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[AccountKind] = mapped_column(StrEnumType(AccountKind, 8))
    holder_name: Mapped[str] = mapped_column(String(140))
    number_enc: Mapped[str] = mapped_column(String(500))
    last4: Mapped[str] = mapped_column(String(4))
    country: Mapped[str | None] = mapped_column(String(2))  # an IBAN's
    bic: Mapped[str | None] = mapped_column(String(11))
    routing_number: Mapped[str | None] = mapped_column(String(9))
    account_type: Mapped[str | None] = mapped_column(String(8))  # checking | savings


class PayoutMethod(StrEnum):
    sepa = "sepa"  # a pain.001 credit transfer file
    nacha = "nacha"  # an ACH PPD file


class PayoutStatus(StrEnum):
    open = "open"  # its file is out; not yet confirmed paid
    paid = "paid"  # every line was paid or returned


class LineStatus(StrEnum):
    pending = "pending"
    paid = "paid"
    returned = "returned"  # the bank sent it back: its spends can go in a later batch


class Payout(Entity):
    __tablename__ = "payout"
    __audit_entity__ = "payout"
    __table_args__ = (Index("ix_payout_company_created", "company_id", "created_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    method: Mapped[PayoutMethod] = mapped_column(StrEnumType(PayoutMethod, 8))
    status: Mapped[PayoutStatus] = mapped_column(StrEnumType(PayoutStatus, 8))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal]
    execution_date: Mapped[date]
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    # The paying account as it was when the batch was made (the file is made from it).
    debtor: Mapped[dict[str, Any]] = mapped_column(JSON)
    paid_at: Mapped[datetime | None]


class PayoutLine(Entity):
    """One employee's transfer in a batch: their spends' base amounts, to their account."""

    __tablename__ = "payout_line"
    __table_args__ = (Index("ix_payout_line_payout", "payout_id"),)

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    payout_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payout.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    # The account paid (no foreign key: the account may be changed or removed once paid).
    bank_account_id: Mapped[uuid.UUID]
    amount: Mapped[Decimal]
    spend_ids: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[LineStatus] = mapped_column(StrEnumType(LineStatus, 10))
    return_reason: Mapped[str | None] = mapped_column(String(200))
