from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, exact_text, utcnow


class ProcessedEvent(Base):
    """A directory-sync event already applied for a company: a replay is skipped.

    `event_id` is the provider's id, or a key derived from the event's content when it sent none;
    those rows carry their `subject` (the person's email), so that a content key is weighed
    against what happened to that person since."""

    __tablename__ = "processed_event"
    __table_args__ = (Index("ix_processed_event_subject", "company_id", "subject", "processed_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(exact_text(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(320))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
