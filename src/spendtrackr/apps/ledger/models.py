from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, Entity, StrEnumType, utcnow


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
    # approval | reimbursement | tax | capture (a capture changed a booked card purchase) | refund
    kind: Mapped[str] = mapped_column(String(16))
    entry_date: Mapped[date]
    account: Mapped[str] = mapped_column(String(32))
    debit: Mapped[Decimal]
    credit: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))  # the company's base currency
    # The spend as entered, and the rate that turned it into the base currency above.
    original_amount: Mapped[Decimal]
    original_currency: Mapped[str] = mapped_column(String(3))
    fx_rate: Mapped[Decimal] = mapped_column(Numeric(24, 10, asdecimal=True))
    vendor: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(String(1000), default="")
    employee: Mapped[str] = mapped_column(String(200), default="")
    # The spend's team's GL code (a department, class or tracking option), "" for none.
    department: Mapped[str] = mapped_column(String(32), default="")
    exported_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExportStatus(StrEnum):
    pending = "pending"
    running = "running"
    ready = "ready"
    failed = "failed"


class Export(Entity):
    """An accounting export asked for now and written by a worker (the row is the job); its
    file is kept in storage under `storage_key` once ready."""

    __audit_entity__ = "export"
    __tablename__ = "export"
    __table_args__ = (
        Index("ix_export_company_created", "company_id", "created_at"),
        Index("ix_export_queue", "status", "started_at"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    # Who asked: a user or an API key (no foreign key: a key is not a user).
    requested_by: Mapped[uuid.UUID]
    format: Mapped[str] = mapped_column(String(4))
    date_from: Mapped[date | None]
    date_to: Mapped[date | None]
    only_unexported: Mapped[bool] = mapped_column(default=False)
    status: Mapped[ExportStatus] = mapped_column(
        StrEnumType(ExportStatus, 10), default=ExportStatus.pending
    )
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    storage_key: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None]
    line_count: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
