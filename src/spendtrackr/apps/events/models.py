from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, exact_text, utcnow


class ProcessedEvent(Base):
    """A directory-sync event id already applied for a company: a replay is skipped."""

    __tablename__ = "processed_event"

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(exact_text(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
