from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, utcnow

# A rate: how many units of `quote` one unit of `base` buys (the ECB's "1 EUR = 1.0921 USD").
Rate = Numeric(24, 10, asdecimal=True)


class ExchangeRate(Base):
    """One day's rate. `company_id` null: a reference rate the operator imported (the ECB's);
    set: a company's own manual rate, which wins over the reference for that company."""

    __tablename__ = "exchange_rate"
    __table_args__ = (
        Index("ix_exchange_rate_pair_date", "base", "quote", "rate_date"),
        Index("ix_exchange_rate_company_pair_date", "company_id", "base", "quote", "rate_date"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("company.id"))
    rate_date: Mapped[date]
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Rate)
    source: Mapped[str] = mapped_column(String(16))  # ecb | csv | manual
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
