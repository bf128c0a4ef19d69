"""Notifications: written in the transaction of the change they announce, in the app and by
email as each person prefers; the preferences, and the signed unsubscribe links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Uuid, literal, select, union_all, update
from sqlalchemy.orm import Session

from spendtrackr.apps.notifications.models import (
    BOTH,
    EMAIL,
    IN_APP,
    KINDS,
    Digest,
    EmailStatus,
    Notification,
    NotificationDefault,
    NotificationPreference,
)
from spendtrackr.apps.users.models import User
from spendtrackr.core.db import EMAIL_ENABLED, id_param, utcnow
from spendtrackr.core.errors import NotFound
from spendtrackr.core.pagination import PageParams, paginate


def _channels(
    own: Mapping[str, Sequence[str]], company: Mapping[str, Sequence[str]], kind: str
) -> list[str]:
    """A kind's channels: the person's choice, else the company's, else both; a kind whose
    email cannot be turned off keeps it."""
    chosen = list(own[kind] if kind in own else company.get(kind, BOTH))
    if not KINDS.get(kind, True) and EMAIL not in chosen:
        chosen.append(EMAIL)
    return chosen


# The people's own choices and, in a row without a person, the company's defaults: one round
# trip for every notification a change sends (built once: see core/db.py).
_COMPANY = id_param("company_id")
_CHANNELS = union_all(
    select(NotificationPreference.user_id, NotificationPreference.channels).where(
        NotificationPreference.company_id == _COMPANY,
        NotificationPreference.user_id.in_(id_param("user_ids", expanding=True)),
    ),
    select(literal(None, Uuid()), NotificationDefault.channels).where(
        NotificationDefault.company_id == _COMPANY
    ),
)


def channels_for(
    session: Session, *, company_id: uuid.UUID, user_ids: list[uuid.UUID], kind: str
) -> dict[uuid.UUID, tuple[str, ...]]:
    """Each person's channels for `kind`: their own choice, else the company's, else both. A
    kind whose email cannot be turned off keeps it."""
    if not user_ids:
        return {}
    rows = session.execute(_CHANNELS, {"company_id": company_id, "user_ids": user_ids})
    chosen: dict[uuid.UUID | None, dict[str, list[str]]] = {row[0]: row[1] for row in rows}
    company = chosen.pop(None, {})
    return {u: tuple(_channels(chosen.get(u, {}), company, kind)) for u in user_ids}


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
    """Tell these users, in the app and (when email is on) by email, as each prefers: the email
    is queued in the same transaction, so it goes out if and only if the change commits.
    `context` is what the email's template may show beyond the message (amounts, names,
    links)."""
    now = utcnow()
    emailing = bool(session.info.get(EMAIL_ENABLED))
    recipients = list(dict.fromkeys(user_ids))
    wanted = channels_for(session, company_id=company_id, user_ids=recipients, kind=kind)
    rows = []
    for user_id in recipients:
        by_email = emailing and EMAIL in wanted[user_id]
        in_app = IN_APP in wanted[user_id]
        if not (by_email or in_app):
            continue
        rows.append(
            Notification(
                company_id=company_id,
                user_id=user_id,
                kind=kind,
                message=message[:500],
                entity_type=entity_type,
                entity_id=entity_id,
                created_at=now,
                in_app=in_app,
                email_status=EmailStatus.pending if by_email else None,
                email_context=jsonable(context) if by_email and context else None,
                email_next_attempt_at=now if by_email else None,
            )
        )
    session.add_all(rows)


def jsonable(context: dict[str, Any]) -> dict[str, Any]:
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
        Notification.company_id == company_id,
        Notification.user_id == user_id,
        Notification.in_app.is_(True),
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


# --- preferences ----------------------------------------------------------------------------------


def preference(session: Session, *, user_id: uuid.UUID) -> NotificationPreference | None:
    return session.get(NotificationPreference, user_id)


def company_default(session: Session, *, company_id: uuid.UUID) -> NotificationDefault | None:
    return session.get(NotificationDefault, company_id)


def set_preference(
    session: Session,
    *,
    company_id: uuid.UUID,
    user_id: uuid.UUID,
    channels: Mapping[str, Sequence[str]] | None,
    digest: Digest | None,
    locale: str | None = None,
) -> NotificationPreference:
    """Merge the kinds given into the person's choices (kinds not given keep theirs)."""
    row = session.get(NotificationPreference, user_id, with_for_update=True)
    if row is None:
        row = NotificationPreference(user_id=user_id, company_id=company_id, channels={})
        session.add(row)
    if channels is not None:
        row.channels = {**row.channels, **{k: list(v) for k, v in channels.items()}}
    if digest is not None:
        row.digest = digest
    if locale is not None:
        row.locale = locale
    session.flush()
    return row


def set_company_default(
    session: Session,
    *,
    company_id: uuid.UUID,
    channels: Mapping[str, Sequence[str]] | None,
    digest: Digest | None,
) -> NotificationDefault:
    row = session.get(NotificationDefault, company_id, with_for_update=True)
    if row is None:
        row = NotificationDefault(company_id=company_id, channels={}, digest=Digest.weekly)
        session.add(row)
    if channels is not None:
        row.channels = {**row.channels, **{k: list(v) for k, v in channels.items()}}
    if digest is not None:
        row.digest = digest
    session.flush()
    return row


def effective(
    person: NotificationPreference | None, company: NotificationDefault | None
) -> tuple[dict[str, list[str]], Digest]:
    """Every kind's channels and the digest, as they apply to a person."""
    own = person.channels if person else {}
    defaults = company.channels if company else {}
    channels = {kind: _channels(own, defaults, kind) for kind in KINDS}
    digest = (person.digest if person and person.digest else None) or (
        company.digest if company else Digest.weekly
    )
    return channels, digest


# --- unsubscribe links ----------------------------------------------------------------------------


def unsubscribe_token(key: bytes, *, user_id: uuid.UUID, kind: str) -> str:
    payload = f"{user_id}:{kind}"
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16]
    raw = payload.encode() + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_unsubscribe_token(key: bytes, token: str) -> tuple[uuid.UUID, str] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload, _, mac = raw.rpartition(b".")
        expected = base64.urlsafe_b64encode(
            hmac.new(key, payload, hashlib.sha256).digest()[:16]
        ).rstrip(b"=")
        if not hmac.compare_digest(mac, expected):
            return None
        user_id, _, kind = payload.decode().partition(":")
        return uuid.UUID(user_id), kind
    except (ValueError, UnicodeDecodeError):
        return None


def unsubscribe_by_token(session: Session, key: bytes, token: str) -> str | None:
    """The kind the link's person gets in the app only from now on; None for a link that is
    not one of ours, of a person no longer active, or of a kind that cannot be turned off."""
    found = read_unsubscribe_token(key, token)
    if found is None:
        return None
    user_id, kind = found
    user = session.get(User, user_id)
    if user is None or not user.is_active or not KINDS.get(kind, False):
        return None
    person = session.get(NotificationPreference, user_id)
    default = session.get(NotificationDefault, user.company_id)
    current = _channels(
        person.channels if person else {}, default.channels if default else {}, kind
    )
    keep = [c for c in current if c != EMAIL]
    set_preference(
        session, company_id=user.company_id, user_id=user_id, channels={kind: keep}, digest=None
    )
    return kind
