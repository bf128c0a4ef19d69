"""Which directory-sync events a company has already applied."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

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


def recent_by_subject(
    session: Session, *, company_id: uuid.UUID, subjects: set[str], since: datetime
) -> dict[str, list[str]]:
    """The content keys applied to each subject since `since`, oldest first."""
    history: dict[str, list[str]] = defaultdict(list)
    if not subjects:
        return history
    rows = session.execute(
        select(ProcessedEvent.subject, ProcessedEvent.event_id)
        .where(
            ProcessedEvent.company_id == company_id,
            ProcessedEvent.subject.in_(subjects),
            ProcessedEvent.processed_at >= since,
        )
        .order_by(ProcessedEvent.processed_at)
    )
    for subject, event_id in rows:
        if subject is not None:
            history[subject].append(event_id)
    return history


def mark_processed(
    session: Session,
    *,
    company_id: uuid.UUID,
    event_id: str,
    event_type: str,
    at: datetime,
    subject: str | None = None,
    content_key: bool = False,
) -> None:
    """Remember an applied event; a content key applied again (after its window, or after another
    change to its subject) moves to now."""
    seen = session.get(ProcessedEvent, (company_id, event_id)) if content_key else None
    if seen is not None:
        seen.processed_at = at
        return
    session.add(
        ProcessedEvent(
            company_id=company_id,
            event_id=event_id,
            type=event_type,
            subject=subject,
            processed_at=at,
        )
    )
