from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, Entity, StrEnumType, utcnow

# The audit actions that are public events, and the event type each one is.
EVENT_TYPES: dict[str, str] = {
    "spend.created": "spend.created",
    "spend.updated": "spend.updated",
    "spend.approved": "spend.approved",
    "spend.rejected": "spend.rejected",
    "spend.blocked": "spend.blocked",
    "spend.reimbursed": "spend.reimbursed",
    "spend.cancelled": "spend.cancelled",
    "approval.requested": "approval.requested",
    "approval.approved": "approval.decided",
    "approval.rejected": "approval.decided",
    "receipt.ocr_completed": "receipt.processed",
    "receipt.ocr_failed": "receipt.processed",
    "card.issued": "card.created",
    "card.updated": "card.updated",
    "card.limits_changed": "card.updated",
    "card.frozen": "card.updated",
    "card.unfrozen": "card.updated",
    "card.cancelled": "card.updated",
    "card.authorization_approved": "card.authorization.approved",
    "card.authorization_declined": "card.authorization.declined",
    "user.created": "user.created",
    "user.updated": "user.updated",
    "user.role_assigned": "user.updated",
    "user.deleted": "user.deactivated",
    "export.ready": "export.ready",
}
TYPES: tuple[str, ...] = tuple(sorted(set(EVENT_TYPES.values())))
ALL = "*"


def actions_for(types: Iterable[str]) -> list[str]:
    """The audit actions behind these event types (`*`: all of them)."""
    wanted = set(types)
    return sorted(a for a, t in EVENT_TYPES.items() if ALL in wanted or t in wanted)


class WebhookEndpoint(Entity):
    """Where a company's events are sent. `cursor_seq` is how far along the company's audit log
    (its events) the endpoint's outbox has been filled."""

    __audit_entity__ = "webhook_endpoint"
    __tablename__ = "webhook_endpoint"
    __table_args__ = (Index("ix_webhook_endpoint_company_created", "company_id", "created_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(default=True, index=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    secret_enc: Mapped[str] = mapped_column(String(500))
    previous_secret_enc: Mapped[str | None] = mapped_column(String(500))
    previous_expires_at: Mapped[datetime | None]
    cursor_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class WebhookDelivery(Entity):
    """One event for one endpoint: sent until it succeeds or its retries run out."""

    __audit_entity__ = "webhook_delivery"
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint_created", "endpoint_id", "created_at"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoint.id"))
    event_id: Mapped[uuid.UUID]  # the audit entry the event is
    event_type: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[DeliveryStatus] = mapped_column(StrEnumType(DeliveryStatus, 10))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_latency_ms: Mapped[int | None]
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One HTTP request of a delivery, and what came of it."""

    __tablename__ = "webhook_attempt"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_delivery.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    latency_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(String(500))
