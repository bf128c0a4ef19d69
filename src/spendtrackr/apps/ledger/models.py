from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, utcnow


class LedgerLine(Base):
    """One side of a journal entry. Append-only: written when a spend is approved or reimbursed,
    in the same transaction; only `exported_at` is ever set afterwards."""

    __tablename__ = "ledger_line"
    __table_args__ = (
        Index("ix_ledger_line_company_date", "company_id", "entry_date", "journal_id", "line_no"),
        Index("ix_ledger_line_company_spend", "company_id", "spend_id"),
        Index("ix_ledger_line_company_created", "company_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    journal_id: Mapped[uuid.UUID]
    line_no: Mapped[int]
    spend_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spend.id"))
    kind: Mapped[str] = mapped_column(String(16))  # approval | reimbursement
    entry_date: Mapped[date]
    account: Mapped[str] = mapped_column(String(32))
    debit: Mapped[Decimal]
    credit: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    vendor: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(String(1000), default="")
    employee: Mapped[str] = mapped_column(String(200), default="")
    exported_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
