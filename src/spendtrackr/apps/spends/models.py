from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity


class SpendStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    blocked = "blocked"
    cancelled = "cancelled"
    reimbursed = "reimbursed"


class Spend(Entity):
    __tablename__ = "spend"
    __table_args__ = (
        # Every list and report starts from the company; the trailing columns serve the filters
        # and the newest-first order.
        Index("ix_spend_company_created", "company_id", "created_at", "id"),
        Index("ix_spend_company_user_created", "company_id", "user_id", "created_at"),
        Index("ix_spend_company_status_created", "company_id", "status", "created_at"),
        Index("ix_spend_company_team_created", "company_id", "team_id", "created_at"),
        # The duplicate check on every submission: same submitter, date and amount.
        Index("ix_spend_company_user_date", "company_id", "user_id", "spend_date", "amount"),
        # The report's groupings read only these indexes (covering: the group, the currency,
        # the filters and the amount), never the rows: a million-spend summary is one index scan
        # in group order, without a temporary table or a sort.
        Index("ix_spend_company_date", "company_id", "spend_date", "currency", "status", "amount"),
        Index(
            "ix_spend_company_category",
            "company_id",
            "category_id",
            "currency",
            "status",
            "spend_date",
            "amount",
        ),
        Index(
            "ix_spend_company_vendor",
            "company_id",
            "vendor_id",
            "currency",
            "status",
            "spend_date",
            "amount",
        ),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    spend_date: Mapped[date]
    description: Mapped[str] = mapped_column(String(1000), default="")
    source: Mapped[str] = mapped_column(String(8), default="manual")
    status: Mapped[str] = mapped_column(String(16))
    category_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("category.id"))
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("vendor.id"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team.id"))
    card_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("card.id"))
    # Flags the system raised (possible_duplicate, receipt_amount_mismatch) and those the
    # policies raised; a re-evaluation replaces only the latter.
    system_flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    policy_flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    policy_result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decided_at: Mapped[datetime | None]
    reimbursed_at: Mapped[datetime | None]

    @property
    def flags(self) -> list[str]:
        return merge_flags(self.system_flags, self.policy_flags)


def merge_flags(system_flags: list[str], policy_flags: list[str]) -> list[str]:
    """A spend's flags as shown: the system's, then the policies', each once."""
    return list(dict.fromkeys([*system_flags, *policy_flags]))
