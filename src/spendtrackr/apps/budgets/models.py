from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity, StrEnumType


class BudgetPeriod(StrEnum):
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"
    custom = "custom"  # one range, `starts_on` to `ends_on`


class BudgetMode(StrEnum):
    hard = "hard"  # a spend that would take it past its amount is blocked (a card declined)
    soft = "soft"  # such a spend is flagged `over_budget`; policies may route it


class Budget(Entity):
    """How much a team and/or a category (or the whole company) may spend per period, in the
    company's base currency. What it has used is not stored: it is read from the spends' daily
    totals when asked (`budgets.service.consumption`)."""

    __tablename__ = "budget"
    __audit_entity__ = "budget"
    __table_args__ = (Index("ix_budget_company_active", "company_id", "is_active"),)

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team.id"))
    category_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("category.id"))
    period: Mapped[BudgetPeriod] = mapped_column(StrEnumType(BudgetPeriod, 16))
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))  # the company's base currency
    mode: Mapped[BudgetMode] = mapped_column(StrEnumType(BudgetMode, 8))
    is_active: Mapped[bool] = mapped_column(default=True)
