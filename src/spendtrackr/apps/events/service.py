"""Which directory-sync events a company has already applied."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from spendtrackr.apps.events.models import ProcessedEvent


def already_processed(session: Session, *, company_id: uuid.UUID, event_ids: list[str]) -> set[str]:
    if not event_ids:
        return set()
    return set(
        session.scalars(
            select(ProcessedEvent.event_id).where(
                ProcessedEvent.company_id == company_id, ProcessedEvent.event_id.in_(event_ids)
            )
        )
    )


def mark_processed(
    session: Session, *, company_id: uuid.UUID, event_id: str, event_type: str
) -> None:
    session.add(ProcessedEvent(company_id=company_id, event_id=event_id, type=event_type))
