"""The worker's email delivery: notifications queued for email (their own rows are the outbox)
are claimed, rendered and handed to the SMTP server, each attempt recorded.

At least once, and in practice once: a claimed email is the worker's for a lease; it is marked
sent right after the server accepts it; a server that goes away mid-batch leaves the rest
pending for the next try (each carries a stable Message-ID besides)."""

from __future__ import annotations

import logging
import smtplib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.approvals import service as approvals_service
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.notifications import emails
from spendtrackr.apps.notifications import service as notifications
from spendtrackr.apps.notifications.models import (
    KINDS,
    Digest,
    DigestSent,
    EmailAttempt,
    EmailStatus,
    Notification,
    NotificationPreference,
)
from spendtrackr.apps.spends import service as spends_service
from spendtrackr.apps.users.models import Role, User
from spendtrackr.core import leases
from spendtrackr.core.config import Settings
from spendtrackr.core.db import session_scope, utcnow
from spendtrackr.core.retry import Schedule

logger = logging.getLogger(__name__)

# Waits after each failed attempt (then the email is given up, and says why).
RETRY = Schedule(
    (
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=6),
        timedelta(hours=12),
    )
)
LEASE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class _Claimed:
    notification_id: uuid.UUID
    email: emails.Email


def _claim(factory: sessionmaker[Session], settings: Settings, now: datetime) -> list[_Claimed]:
    claimed: list[_Claimed] = []
    with session_scope(factory) as session:
        rows = list(
            session.scalars(
                select(Notification)
                .where(
                    Notification.email_status == EmailStatus.pending,
                    Notification.email_next_attempt_at <= now,
                )
                .order_by(Notification.email_next_attempt_at)
                .limit(settings.email_batch)
                .with_for_update(skip_locked=True)
            )
        )
        users = {
            u.id: u
            for u in session.scalars(select(User).where(User.id.in_({n.user_id for n in rows})))
        }
        companies = companies_service.names(session, ids=list({n.company_id for n in rows}))
        locales = {
            p.user_id: p.locale
            for p in session.scalars(
                select(NotificationPreference).where(
                    NotificationPreference.user_id.in_(list(users))
                )
            )
        }
        for notification in rows:
            notification.email_next_attempt_at = now + LEASE
            user = users[notification.user_id]
            sender = settings.email_from
            claimed.append(
                _Claimed(
                    notification.id,
                    emails.render(
                        kind=notification.kind,
                        message=notification.message,
                        context=notification.email_context or {},
                        to=user.email,
                        name=user.full_name,
                        company=companies.get(notification.company_id, "SpendTrackr"),
                        entity_type=notification.entity_type,
                        entity_id=None
                        if notification.entity_id is None
                        else str(notification.entity_id),
                        locale=emails.locale_of(
                            locales.get(notification.user_id), settings.email_locale
                        ),
                        public_url=settings.public_url,
                        message_id=emails.message_id(str(notification.id), sender),
                        unsubscribe=_unsubscribe_link(settings, notification),
                    ),
                )
            )
    return claimed


def _unsubscribe_link(settings: Settings, notification: Notification) -> str | None:
    if not KINDS.get(notification.kind, True):
        return None
    token = notifications.unsubscribe_token(
        settings.unsubscribe_key, user_id=notification.user_id, kind=notification.kind
    )
    return f"{settings.public_url.rstrip('/')}/notifications/unsubscribe?token={token}"


def _record(
    factory: sessionmaker[Session], notification_id: uuid.UUID, error: str | None, now: datetime
) -> None:
    with session_scope(factory) as session:
        notification = session.get(Notification, notification_id, with_for_update=True)
        if notification is None or notification.email_status is not EmailStatus.pending:
            return
        notification.email_attempts += 1
        session.add(EmailAttempt(notification_id=notification_id, attempted_at=now, error=error))
        if error is None:
            notification.email_status = EmailStatus.sent
            notification.emailed_at = now
            notification.email_next_attempt_at = None
            notification.email_error = None
            if notification.email_context and "private_link" in notification.email_context:
                # an invite's link carries its token: not kept once it is sent
                notification.email_context = {
                    k: v for k, v in notification.email_context.items() if k != "private_link"
                }
            return
        notification.email_error = error[:500]
        notification.email_next_attempt_at = RETRY.next_attempt(notification.email_attempts, now)
        if notification.email_next_attempt_at is None:
            notification.email_status = EmailStatus.failed


def send_emails(
    factory: sessionmaker[Session], *, settings: Settings, now: datetime | None = None
) -> int:
    """Send the emails that are due; how many were tried."""
    if not settings.email_enabled:
        return 0
    at = now or utcnow()
    claimed = _claim(factory, settings, at)
    if not claimed:
        return 0
    try:
        client = emails.connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("SMTP server unavailable: %s", exc)
        for item in claimed:
            _record(factory, item.notification_id, f"SMTP server unavailable: {exc}", at)
        return len(claimed)
    pending = list(claimed)
    try:
        while pending:
            item = pending[0]
            try:
                client.send_message(emails.mime(item.email, settings.email_from))
            except smtplib.SMTPRecipientsRefused as exc:
                _record(
                    factory,
                    item.notification_id,
                    f"recipient refused: {_first(exc.recipients)}",
                    at,
                )
            except smtplib.SMTPResponseException as exc:
                _record(
                    factory, item.notification_id, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", at
                )
            else:
                _record(factory, item.notification_id, None, at)
            pending.pop(0)
    except (OSError, smtplib.SMTPException) as exc:
        # The connection went away: what is left is tried again later.
        logger.warning("SMTP connection lost after %d emails: %s", len(claimed) - len(pending), exc)
        for item in pending:
            _record(factory, item.notification_id, f"SMTP connection lost: {exc}", at)
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return len(claimed)


def _first(recipients: dict[str, Any]) -> str:
    for address, (code, reason) in recipients.items():
        return f"{address} ({code} {reason!r})"
    return "?"


# --- digests --------------------------------------------------------------------------------------

DIGEST_LEASE = "notifications.digests"
PERIODS = {Digest.daily: timedelta(days=1), Digest.weekly: timedelta(days=7)}
# Who gets a digest: the people who approve or run the books.
DIGEST_ROLES = (Role.manager, Role.finance, Role.admin)


def send_digests(
    factory: sessionmaker[Session], *, settings: Settings, now: datetime | None = None
) -> int:
    """Queue the digests that are due (daily or weekly, as each person or their company chose):
    what waits for the person's decision and, for finance and admins, the company's spends of
    the period. One worker at a time does this (a lease); each digest is then an email like
    any other. The number queued."""
    if not settings.email_enabled:
        return 0
    at = now or utcnow()
    holder = uuid.uuid4().hex
    with session_scope(factory) as session:
        if not leases.acquire(
            session, name=DIGEST_LEASE, holder=holder, now=at, ttl=timedelta(minutes=10)
        ):
            return 0
    queued = 0
    try:
        with session_scope(factory) as session:
            for user in session.scalars(
                select(User).where(User.is_active.is_(True), User.role.in_(DIGEST_ROLES))
            ):
                digest = _digest_due(session, user, at)
                if digest is not None:
                    queued += _queue_digest(session, user, at, digest)
    finally:
        with session_scope(factory) as session:
            leases.release(session, name=DIGEST_LEASE, holder=holder, now=at)
    return queued


def _digest_due(session: Session, user: User, at: datetime) -> Digest | None:
    """The person's digest period, when one is due now."""
    person = notifications.preference(session, user_id=user.id)
    company = notifications.company_default(session, company_id=user.company_id)
    channels, digest = notifications.effective(person, company)
    if digest is Digest.off or "email" not in channels["digest"]:
        return None
    sent = session.get(DigestSent, user.id)
    return digest if sent is None or sent.sent_at <= at - PERIODS[digest] else None


def _queue_digest(session: Session, user: User, at: datetime, digest: Digest) -> int:
    """The person's digest as a notification that is emailed only; nothing to say, nothing
    sent (the period still counts as done)."""
    since = at - PERIODS[digest]
    waiting, oldest = approvals_service.waiting_for(
        session, company_id=user.company_id, user_id=user.id, role=user.role
    )
    context: dict[str, Any] = {"period": digest.value, "waiting": waiting}
    if oldest is not None:
        context["oldest_days"] = max(0, (at - oldest).days)
    lines = []
    if waiting:
        lines.append(f"{waiting} approval(s) wait for you")
    if user.role in (Role.finance, Role.admin):
        stats = spends_service.period_stats(session, company_id=user.company_id, since=since)
        context.update(stats)
        lines.append(
            f"{stats['submitted']} spend(s) submitted, {stats['pending']} pending, "
            f"{stats['to_reimburse']} approved and not yet reimbursed"
        )
    sent = session.get(DigestSent, user.id)
    if sent is None:
        session.add(DigestSent(user_id=user.id, sent_at=at))
    else:
        sent.sent_at = at
    if not waiting and not context.get("submitted"):
        return 0
    session.add(
        Notification(
            company_id=user.company_id,
            user_id=user.id,
            kind="digest",
            message=f"Your {digest.value} digest: " + "; ".join(lines),
            created_at=at,
            in_app=False,
            email_status=EmailStatus.pending,
            email_context=notifications.jsonable(context),
            email_next_attempt_at=at,
        )
    )
    return 1
