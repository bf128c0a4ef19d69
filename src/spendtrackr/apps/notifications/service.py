"""In-app notifications: written in the transaction of the change they announce."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from spendtrackr.apps.notifications.models import EmailStatus, Notification
from spendtrackr.core.db import EMAIL_ENABLED, utcnow
from spendtrackr.core.errors import NotFound
from spendtrackr.core.pagination import PageParams, paginate


def notify(
    session: Session,
    *,
    company_id: uuid.UUID,
    user_ids: Iterable[uuid.UUID],
    kind: str,
    message: str,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    context: dict[str, Any] | None = None,
) -> None:
    """Tell these users, in the app and (when email is on) by email: the email is queued in the
    same transaction, so it goes out if and only if the change commits. `context` is what
    the email's template may show beyond the message (amounts, names, links)."""
    now = utcnow()
    emailed = bool(session.info.get(EMAIL_ENABLED))
    session.add_all(
        Notification(
            company_id=company_id,
            user_id=user_id,
            kind=kind,
            message=message[:500],
            entity_type=entity_type,
            entity_id=entity_id,
            created_at=now,
            email_status=EmailStatus.pending if emailed else None,
            email_context=_jsonable(context) if emailed and context else None,
            email_next_attempt_at=now if emailed else None,
        )
        for user_id in dict.fromkeys(user_ids)
    )


def _jsonable(context: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (int, float, bool)) or v is None else str(v)
        for k, v in context.items()
    }


def notify_owner(session: Session, entity: Any, *, kind: str, message: str) -> None:
    """Tell the user an entity belongs to (a spend's submitter, a card's holder) about it: the
    company, the user and the link to the entity come from it."""
    notify(
        session,
        company_id=entity.company_id,
        user_ids=[entity.user_id],
        kind=kind,
        message=message,
        entity_type=entity.__audit_entity__,
        entity_id=entity.id,
        context={
            key: getattr(entity, key)
            for key in ("amount", "currency", "description", "spend_date")
            if getattr(entity, key, None) is not None
        },
    )


def list_notifications(
    session: Session,
    *,
    company_id: uuid.UUID,
    user_id: uuid.UUID,
    unread_only: bool,
    page: PageParams,
) -> tuple[int, list[Notification]]:
    stmt = select(Notification).where(
        Notification.company_id == company_id, Notification.user_id == user_id
    )
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return paginate(session, stmt.order_by(Notification.created_at.desc(), Notification.id), page)


def mark_read(
    session: Session, *, company_id: uuid.UUID, user_id: uuid.UUID, notification_id: uuid.UUID
) -> None:
    notification = session.scalars(
        select(Notification).where(
            Notification.id == notification_id,
            Notification.company_id == company_id,
            Notification.user_id == user_id,  # someone else's is as unknown as a missing one
        )
    ).one_or_none()
    if notification is None:
        raise NotFound("Notification not found")
    if notification.read_at is None:
        notification.read_at = utcnow()


def mark_all_read(session: Session, *, company_id: uuid.UUID, user_id: uuid.UUID) -> int:
    result = session.execute(
        update(Notification)
        .where(
            Notification.company_id == company_id,
            Notification.user_id == user_id,
            Notification.read_at.is_(None),
        )
        .values(read_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
