from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, Entity, ExactTotal, StrEnumType, exact_text, utcnow


class CardStatus(StrEnum):
    active = "active"
    frozen = "frozen"
    cancelled = "cancelled"


class Card(Entity):
    __audit_entity__ = "card"
    __tablename__ = "card"
    __table_args__ = (
        Index("ix_card_company_user", "company_id", "user_id"),
        Index("ix_card_company_created", "company_id", "created_at"),
        Index("ix_card_company_updated", "company_id", "updated_at", "id"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    currency: Mapped[str] = mapped_column(String(3))
    label: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[CardStatus] = mapped_column(
        StrEnumType(CardStatus, 10), default=CardStatus.active
    )
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int]
    exp_year: Mapped[int]
    # HMAC-SHA256 of the full number under a server key: lets the number be matched, never read.
    number_hash: Mapped[str] = mapped_column(String(64), unique=True)
    spending_limits: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    allowed_categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    blocked_categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Merchant category codes (ISO 18245, four digits) the card may / may not be used at.
    allowed_mccs: Mapped[list[str]] = mapped_column(JSON, default=list)
    blocked_mccs: Mapped[list[str]] = mapped_column(JSON, default=list)
    cancelled_at: Mapped[datetime | None]


class CardAuthorization(Base):
    """Every answer given to the card network, approved or declined; a retry returns it again."""

    __tablename__ = "card_authorization"
    __table_args__ = (
        UniqueConstraint("company_id", "authorization_id"),
        # The limit sums: approved amounts of one card since a window start.
        Index("ix_card_authorization_card_window", "card_id", "approved", "created_at"),
        Index("ix_card_authorization_company_created", "company_id", "created_at", "id"),
        # The holds still open, oldest first: what the expiry sweep reads.
        Index("ix_card_authorization_open_holds", "hold_closed_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("card.id"))
    authorization_id: Mapped[str] = mapped_column(exact_text(100))
    amount: Mapped[Decimal]  # as the network sent it, in the purchase's currency
    currency: Mapped[str] = mapped_column(String(3))
    # What the card was charged, in its own currency (the amount itself when the purchase was
    # in it): what the limits count.
    billed_amount: Mapped[Decimal]
    billed_currency: Mapped[str] = mapped_column(String(3))
    merchant_name: Mapped[str] = mapped_column(String(200))
    merchant_country: Mapped[str | None] = mapped_column(String(2))
    mcc: Mapped[str | None] = mapped_column(String(4))
    category_id: Mapped[uuid.UUID | None]
    approved: Mapped[bool]
    decline_reason: Mapped[str | None] = mapped_column(String(64))
    spend_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("spend.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What followed an approval, in the card's currency: cleared (captured), released (reversed)
    # and given back (refunded). The hold still counted is what was neither captured nor
    # reversed, until the hold closes (`hold_closed_at`: nothing left to hold, or it expired);
    # the limits count hold + captured - refunded (`cards.service.usage_of`).
    captured: Mapped[Decimal] = mapped_column(default=Decimal(0))
    reversed: Mapped[Decimal] = mapped_column(default=Decimal(0))
    refunded: Mapped[Decimal] = mapped_column(default=Decimal(0))
    captured_amount: Mapped[Decimal] = mapped_column(default=Decimal(0))  # purchase currency
    hold_closed_at: Mapped[datetime | None]


class TransactionKind(StrEnum):
    capture = "capture"
    reversal = "reversal"
    refund = "refund"


class CardTransaction(Base):
    """What the card network reported after an authorization: a capture (clearing), a reversal
    (the hold released) or a refund (money back), each once per network id."""

    __tablename__ = "card_transaction"
    __table_args__ = (
        UniqueConstraint("company_id", "kind", "network_id"),
        Index("ix_card_transaction_company_created", "company_id", "created_at", "id"),
        Index("ix_card_transaction_card_created", "card_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("card.id"))
    kind: Mapped[TransactionKind] = mapped_column(StrEnumType(TransactionKind, 10))
    network_id: Mapped[str] = mapped_column(exact_text(100))
    # The authorization it follows (its row id); none for a refund the network could not link.
    authorization_ref: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("card_authorization.id"), index=True
    )
    amount: Mapped[Decimal]  # in the purchase's currency
    currency: Mapped[str] = mapped_column(String(3))
    billed_amount: Mapped[Decimal]  # in the card's currency: what the limits count
    billed_currency: Mapped[str] = mapped_column(String(3))
    merchant_name: Mapped[str] = mapped_column(String(200))
    merchant_country: Mapped[str | None] = mapped_column(String(2))
    mcc: Mapped[str | None] = mapped_column(String(4))
    # The spend it changed (a capture's), or the credit it created (a refund's).
    spend_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("spend.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CardUsage(Base):
    """What a card has had approved in each limit window, kept with every approval under the
    card's lock: a limit check reads this one row instead of adding up the window's
    authorizations, which grew with the card's use (and were added up under that same lock).

    A window's total is good while its `*_start` is the window now holding the clock; a row whose
    start is older says nothing was approved since, if it was last brought up to date
    (`updated_at`) before the current window began (see `cards.service.LimitUsage`). Every window is
    kept, limited or not, so a limit set later starts from what the card has already spent in it."""

    __tablename__ = "card_usage"

    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("card.id"), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    daily_start: Mapped[datetime]
    daily_used: Mapped[Decimal] = mapped_column(ExactTotal())
    weekly_start: Mapped[datetime]
    weekly_used: Mapped[Decimal] = mapped_column(ExactTotal())
    monthly_start: Mapped[datetime]
    monthly_used: Mapped[Decimal] = mapped_column(ExactTotal())
    yearly_start: Mapped[datetime]
    yearly_used: Mapped[Decimal] = mapped_column(ExactTotal())
    all_time_used: Mapped[Decimal] = mapped_column(ExactTotal())
    updated_at: Mapped[datetime]
