from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, Entity, ExactTotal, StrEnumType

# Units of the base currency per unit of the spend's currency (as exchange rates are kept).
Rate = Numeric(24, 10, asdecimal=True)


class SpendSource(StrEnum):
    manual = "manual"
    card = "card"  # an approved card authorization: the network's amount, date and merchant


class SpendStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    blocked = "blocked"
    cancelled = "cancelled"
    reimbursed = "reimbursed"


class Spend(Entity):
    __tablename__ = "spend"
    # What every audit entry of a spend fingerprints (audit.service, `digest`): a later change
    # of one of these that no entry recorded shows in `/audit-logs/verify?deep=true`.
    __audit_entity__ = "spend"
    __audit_digest__ = (
        "user_id",
        "amount",
        "currency",
        "spend_date",
        "source",
        "card_id",
        "status",
        "reimbursed_at",
    )
    __table_args__ = (
        # Every list and report starts from the company; the trailing columns serve the filters
        # and the newest-first order.
        Index("ix_spend_company_created", "company_id", "created_at", "id"),
        # Incremental sync: what changed after a cursor, in the order it changed.
        Index("ix_spend_company_updated", "company_id", "updated_at", "id"),
        Index("ix_spend_company_user_created", "company_id", "user_id", "created_at"),
        Index("ix_spend_company_status_created", "company_id", "status", "created_at"),
        Index("ix_spend_company_team_created", "company_id", "team_id", "created_at"),
        # The duplicate check on every submission: same submitter, date and base amount.
        Index("ix_spend_company_user_date", "company_id", "user_id", "spend_date", "base_amount"),
        # The filters of the list (the company-wide summary reads `SpendTotal`, not these). The
        # dates' index holds the creation time: a page of a past range sorts from it alone.
        Index("ix_spend_company_date", "company_id", "spend_date", "created_at"),
        Index("ix_spend_company_category", "company_id", "category_id"),
        Index("ix_spend_company_vendor", "company_id", "vendor_id"),
        # Card purchases still to be reminded of their receipt, oldest first.
        Index("ix_spend_receipt_reminder", "source", "receipt_reminded_at", "created_at"),
    )

    # active_history on what the daily totals (`SpendTotal`) count: a change always knows the
    # value it replaces, so the totals can move it from one group to the other.
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), active_history=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    amount: Mapped[Decimal] = mapped_column(active_history=True)
    currency: Mapped[str] = mapped_column(String(3), active_history=True)
    # The amount in the company's base currency, fixed when the spend is submitted (or its
    # amount, currency or date edited): what policies, budgets, duplicates, reports and the
    # ledger compare and add up. `fx_rate` is units of the base currency per unit of `currency`
    # on `fx_date` (1 when they are the same currency).
    base_amount: Mapped[Decimal] = mapped_column(active_history=True)
    base_currency: Mapped[str] = mapped_column(String(3))
    fx_rate: Mapped[Decimal] = mapped_column(Rate)
    fx_date: Mapped[date]
    spend_date: Mapped[date] = mapped_column(active_history=True)
    # The tax included in `amount` (same currency), and its rate in percent, when known (entered,
    # or read off the receipt): booked to the tax account instead of the expense.
    tax_amount: Mapped[Decimal | None]
    tax_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 4, asdecimal=True))
    description: Mapped[str] = mapped_column(String(1000), default="")
    source: Mapped[SpendSource] = mapped_column(
        StrEnumType(SpendSource, 8), default=SpendSource.manual
    )
    status: Mapped[SpendStatus] = mapped_column(StrEnumType(SpendStatus, 16), active_history=True)
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("category.id"), active_history=True
    )
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("vendor.id"), active_history=True
    )
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team.id"), active_history=True)
    card_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("card.id"))
    mcc: Mapped[str | None] = mapped_column(String(4))  # a card purchase's merchant code
    # A card refund is a credit: a spend of a negative amount, approved, pointing at the purchase
    # it gives money back for (none when the network could not link it).
    refund_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("spend.id"))
    # The payout line paying it back (an out-of-pocket spend in a batch not returned): a spend
    # is in one batch at most, and is not reimbursed by hand meanwhile.
    payout_line_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payout_line.id"))
    # When the holder of a card purchase without a receipt was reminded to add one.
    receipt_reminded_at: Mapped[datetime | None]
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


class SpendTotal(Base):
    """How many spends, and how much, per company, day, currency and status, in one group of one
    dimension (`category`, `vendor` or `team`: `group_id` is the category's, vendor's or team's
    id, or `NO_GROUP` for none; `company`: every spend, in the one group `NO_GROUP`). Kept in
    step with every spend change, in the same transaction, by `spends.totals`; the company-wide
    spend summary and the budgets read these rows instead of the spends. A group whose spends all
    moved away keeps its row with zeros."""

    __tablename__ = "spend_total"
    __table_args__ = (
        # A range of days over every group of one dimension (a summary of a few days by
        # category, vendor or team); in the primary key the group comes before the day, so that
        # read would scan all of the company's days.
        Index("ix_spend_total_company_dimension_date", "company_id", "dimension", "spend_date"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(8), primary_key=True)
    group_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    spend_date: Mapped[date] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    status: Mapped[SpendStatus] = mapped_column(StrEnumType(SpendStatus, 16), primary_key=True)
    spend_count: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[Decimal] = mapped_column(ExactTotal())
    base_total: Mapped[Decimal] = mapped_column(ExactTotal())  # the same spends' base amounts


NO_GROUP = uuid.UUID(int=0)  # a SpendTotal's group_id for spends without a category/vendor/team
