from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, StrEnumType, utcnow

# The kinds of notification, and whether a person may turn a kind's email off (an invite, an
# escalation and a disabled webhook endpoint always go out).
KINDS: dict[str, bool] = {
    "approval.requested": True,
    "approval.reminder": True,
    "approval.escalated": False,
    "approval.needs_attention": False,
    "spend.approved": True,
    "spend.rejected": True,
    "spend.blocked": True,
    "spend.flagged": True,
    "spend.reimbursed": True,
    "receipt.amount_mismatch": True,
    "receipt.unreadable": True,
    "receipt.unmatched": True,
    "receipt.missing": True,
    "card.declined": True,
    "card.issued": True,
    "card.frozen": True,
    "card.unfrozen": True,
    "card.cancelled": True,
    "card.limits_changed": True,
    "webhook_endpoint.disabled": False,
    "user.invited": False,
    "digest": True,
}
EMAIL, IN_APP = "email", "in_app"
BOTH: tuple[str, ...] = (EMAIL, IN_APP)


class EmailStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class Notification(Base):
    """What a person is told, in the app; and, when email is on, the email's outbox entry too:
    written in the transaction of the change it announces, sent by the worker after the commit
    (`email_status` null: not emailed)."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_company_user_created", "company_id", "user_id", "created_at"),
        Index("ix_notification_company_user_unread", "company_id", "user_id", "read_at"),
        Index("ix_notification_email_due", "email_status", "email_next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(500))
    entity_type: Mapped[str | None] = mapped_column(String(32))
    entity_id: Mapped[uuid.UUID | None]
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # False: the person asked for this kind by email only (the row is the email's outbox).
    in_app: Mapped[bool] = mapped_column(default=True)
    # The email of it, when email is on.
    email_status: Mapped[EmailStatus | None] = mapped_column(StrEnumType(EmailStatus, 10))
    email_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    email_attempts: Mapped[int] = mapped_column(default=0)
    email_next_attempt_at: Mapped[datetime | None]
    email_error: Mapped[str | None] = mapped_column(String(500))
    emailed_at: Mapped[datetime | None]


class EmailAttempt(Base):
    """One try to hand a notification's email to the SMTP server."""

    __tablename__ = "email_attempt"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    notification_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    error: Mapped[str | None] = mapped_column(String(500))


class Digest(StrEnum):
    daily = "daily"
    weekly = "weekly"
    off = "off"


class NotificationPreference(Base):
    """How a person wants each kind of notification (`{kind: ["email", "in_app"]}`; a kind not
    named follows the company's defaults), and their digest."""

    __tablename__ = "notification_preference"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), index=True)
    channels: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    digest: Mapped[Digest | None] = mapped_column(StrEnumType(Digest, 8))
    # How amounts and dates are written in this person's emails (a Babel/CLDR tag: de_DE, fr).
    locale: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DigestSent(Base):
    """When a person's last digest went out."""

    __tablename__ = "digest_sent"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), primary_key=True)
    sent_at: Mapped[datetime]


class NotificationDefault(Base):
    """A company's defaults for the kinds its people have not chosen for themselves."""

    __tablename__ = "notification_default"

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), primary_key=True)
    channels: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    digest: Mapped[Digest] = mapped_column(StrEnumType(Digest, 8), default=Digest.weekly)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
