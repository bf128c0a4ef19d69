"""Webhook endpoints, the event feed, and the worker's deliveries.

Delivery is at least once: a delivery is claimed for a lease, sent outside any transaction,
and its outcome recorded after; a worker killed in between leaves it to be sent again when the
lease ends (receivers tell a repeat by `webhook-id`). Failed attempts are retried on a schedule
of about three days; a delivery whose retries run out disables its endpoint and tells the
company's admins.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx2 as httpx
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.notifications import service as notifications
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import Role, User
from spendtrackr.apps.webhooks import sender
from spendtrackr.apps.webhooks import service as webhooks
from spendtrackr.apps.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from spendtrackr.apps.webhooks.schemas import (
    AttemptRead,
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
    EventPage,
    EventRead,
    RotatedSecret,
)
from spendtrackr.core.config import Settings
from spendtrackr.core.db import apply_changes, session_scope, utcnow
from spendtrackr.core.errors import ValidationFailed
from spendtrackr.core.pagination import Page, PageParams
from spendtrackr.core.retry import Schedule

logger = logging.getLogger(__name__)

# Waits after each failed attempt: ten attempts over about three days (71 h 35 min).
RETRY = Schedule(
    (
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=14),
        timedelta(hours=20),
        timedelta(hours=20),
    )
)


# --- endpoints ------------------------------------------------------------------------------------


def _allowed(url: str, settings: Settings) -> None:
    """An address written in the URL is refused at once when private; a name is checked each
    time it is sent to, after resolution (sender.resolve)."""
    host = sender.check_url(url)
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if not settings.webhook_allow_private and not sender.is_public(str(literal)):
        raise ValidationFailed(
            "url: private, loopback and link-local addresses are not allowed",
            code="url_not_allowed",
        )


def create_endpoint(
    session: Session, *, actor: User, body: EndpointCreate, settings: Settings
) -> EndpointCreated:
    _allowed(body.url, settings)
    secret = webhooks.new_secret()
    endpoint = webhooks.create_endpoint(
        session,
        company_id=actor.company_id,
        actor_id=actor.id,
        fields=body.model_dump(),
        sealed_secret=webhooks.seal(settings.webhook_key, secret),
    )
    return EndpointCreated.model_validate({**_read(endpoint).model_dump(), "secret": secret})


def _read(endpoint: WebhookEndpoint) -> EndpointRead:
    return EndpointRead.model_validate(endpoint)


def list_endpoints(session: Session, *, actor: User, page: PageParams) -> Page[EndpointRead]:
    total, rows = webhooks.list_endpoints(session, company_id=actor.company_id, page=page)
    return Page(total=total, items=[_read(e) for e in rows])


def get_endpoint(session: Session, *, actor: User, endpoint_id: uuid.UUID) -> EndpointRead:
    return _read(
        webhooks.get_endpoint_or_404(session, company_id=actor.company_id, endpoint_id=endpoint_id)
    )


def update_endpoint(
    session: Session,
    *,
    actor: User,
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    settings: Settings,
) -> EndpointRead:
    endpoint = webhooks.get_endpoint_or_404(
        session, company_id=actor.company_id, endpoint_id=endpoint_id, for_update=True
    )
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        _allowed(changes["url"], settings)
    if changes.get("enabled"):
        changes["disabled_reason"] = None
    diff = apply_changes(endpoint, changes)
    session.flush()
    audit.record_change(
        session, endpoint, "webhook_endpoint.updated", actor_id=actor.id, metadata={"changes": diff}
    )
    return _read(endpoint)


def delete_endpoint(session: Session, *, actor: User, endpoint_id: uuid.UUID) -> None:
    endpoint = webhooks.get_endpoint_or_404(
        session, company_id=actor.company_id, endpoint_id=endpoint_id, for_update=True
    )
    webhooks.delete_endpoint(session, endpoint=endpoint, actor_id=actor.id)


def rotate_secret(
    session: Session,
    *,
    actor: User,
    endpoint_id: uuid.UUID,
    previous_valid_for: timedelta,
    settings: Settings,
) -> RotatedSecret:
    endpoint = webhooks.get_endpoint_or_404(
        session, company_id=actor.company_id, endpoint_id=endpoint_id, for_update=True
    )
    secret = webhooks.new_secret()
    until = utcnow() + previous_valid_for if previous_valid_for else None
    endpoint.previous_secret_enc = endpoint.secret_enc if until else None
    endpoint.previous_expires_at = until
    endpoint.secret_enc = webhooks.seal(settings.webhook_key, secret)
    audit.record_change(
        session,
        endpoint,
        "webhook_endpoint.secret_rotated",
        actor_id=actor.id,
        metadata={"previous_valid_until": until},
    )
    return RotatedSecret(secret=secret, previous_valid_until=until)


# --- deliveries -----------------------------------------------------------------------------------


def _deliveries(session: Session, rows: list[WebhookDelivery]) -> list[DeliveryRead]:
    attempts = webhooks.attempts_of(session, [d.id for d in rows])
    return [
        DeliveryRead.model_validate(d).model_copy(
            update={"attempt_log": [AttemptRead.model_validate(a) for a in attempts[d.id]]}
        )
        for d in rows
    ]


def list_deliveries(
    session: Session, *, actor: User, endpoint_id: uuid.UUID, page: PageParams
) -> Page[DeliveryRead]:
    endpoint = webhooks.get_endpoint_or_404(
        session, company_id=actor.company_id, endpoint_id=endpoint_id
    )
    total, rows = webhooks.list_deliveries(session, endpoint_id=endpoint.id, page=page)
    return Page(total=total, items=_deliveries(session, rows))


def retry_delivery(session: Session, *, actor: User, delivery_id: uuid.UUID) -> DeliveryRead:
    """Send a delivery again now, whatever became of it (a receiver that lost it asks again)."""
    delivery = webhooks.get_delivery_or_404(
        session, company_id=actor.company_id, delivery_id=delivery_id
    )
    delivery.status = DeliveryStatus.pending
    delivery.next_attempt_at = utcnow()
    audit.record_change(
        session,
        delivery,
        "webhook_delivery.retried",
        actor_id=actor.id,
        metadata={"endpoint_id": delivery.endpoint_id, "event_id": delivery.event_id},
    )
    session.flush()
    return _deliveries(session, [delivery])[0]


# --- the feed -------------------------------------------------------------------------------------


def list_events(
    session: Session,
    *,
    actor: User,
    after: int,
    types: list[str],
    limit: int,
    now: datetime,
    retention: timedelta,
) -> EventPage:
    rows = webhooks.events_after(
        session,
        company_id=actor.company_id,
        after=after,
        types=types,
        limit=limit + 1,
        since=now - retention,
    )
    items = [EventRead.model_validate(webhooks.event_body(e)) for e in rows[:limit]]
    return EventPage(
        items=items,
        next_cursor=str(items[-1].sequence if items else after),
        has_more=len(rows) > limit,
    )


# --- the worker -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Send:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    msg_id: str
    body: bytes
    secrets: list[str]


def _fill(factory: sessionmaker[Session], *, now: datetime, limit: int) -> None:
    with session_scope(factory) as session:
        for endpoint in webhooks.endpoints_to_fill(session, limit=100):
            webhooks.fill_outbox(session, endpoint, now=now, limit=limit)


def _claim(factory: sessionmaker[Session], settings: Settings, now: datetime) -> list[_Send]:
    lease = timedelta(seconds=settings.webhook_lease_seconds)
    sends: list[_Send] = []
    with session_scope(factory) as session:
        for delivery in webhooks.claim_due(
            session, now=now, lease=lease, limit=settings.webhook_batch
        ):
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
            entry = webhooks.event_by_id(session, delivery.event_id)
            assert endpoint is not None
            assert entry is not None
            body = json.dumps(webhooks.event_body(entry), separators=(",", ":")).encode()
            sends.append(
                _Send(
                    delivery_id=delivery.id,
                    endpoint_id=endpoint.id,
                    url=endpoint.url,
                    msg_id=f"msg_{entry.id.hex}",
                    body=body,
                    secrets=webhooks.secrets_of(settings.webhook_key, endpoint, now),
                )
            )
    return sends


def _disable(session: Session, delivery: WebhookDelivery, reason: str) -> None:
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        return
    webhooks.disable_endpoint(session, endpoint.id, reason)
    audit.record_change(
        session, endpoint, "webhook_endpoint.disabled", actor_id=None, metadata={"reason": reason}
    )
    notifications.notify(
        session,
        company_id=endpoint.company_id,
        user_ids=users_service.active_ids_with_role(
            session, company_id=endpoint.company_id, role=Role.admin
        ),
        kind="webhook_endpoint.disabled",
        message=f"Webhook endpoint {endpoint.url} was disabled: {reason}",
        entity_type="webhook_endpoint",
        entity_id=endpoint.id,
    )


def _record(
    factory: sessionmaker[Session], send: _Send, outcome: sender.Outcome, now: datetime
) -> None:
    with session_scope(factory) as session:
        delivery = session.get(WebhookDelivery, send.delivery_id, with_for_update=True)
        if delivery is None:  # the endpoint was deleted meanwhile
            return
        delivery.attempts += 1
        delivery.last_status_code = outcome.status_code
        delivery.last_latency_ms = outcome.latency_ms
        delivery.last_error = outcome.error
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                error=outcome.error,
            )
        )
        if outcome.ok:
            delivery.status = DeliveryStatus.succeeded
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            return
        delivery.next_attempt_at = RETRY.next_attempt(delivery.attempts, now)
        if delivery.next_attempt_at is None:
            delivery.status = DeliveryStatus.failed
            _disable(
                session,
                delivery,
                f"deliveries failed for three days (last: {outcome.error or 'no answer'})",
            )


def work_once(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    client: httpx.Client,
    now: datetime | None = None,
    threads: int = 8,
) -> int:
    """Fill the endpoints' outboxes from the log, then send what is due; the deliveries sent."""
    at = now or utcnow()
    _fill(factory, now=at, limit=settings.webhook_batch * 10)
    sends = _claim(factory, settings, at)
    if not sends:
        return 0

    def deliver(send: _Send) -> None:
        if not send.secrets:  # never send unsigned
            outcome = sender.Outcome(
                None,
                0,
                "the endpoint's secret cannot be read with this WEBHOOK_SECRET_KEY: rotate it",
            )
            _record(factory, send, outcome, now or utcnow())
            return
        outcome = sender.send(
            client,
            url=send.url,
            msg_id=send.msg_id,
            body=send.body,
            secrets=send.secrets,
            at=now or utcnow(),
            allow_private=settings.webhook_allow_private,
        )
        if not outcome.ok:
            logger.info("webhook delivery %s failed: %s", send.delivery_id, outcome.error)
        _record(factory, send, outcome, now or utcnow())

    with ThreadPoolExecutor(max_workers=min(threads, len(sends))) as pool:
        list(pool.map(deliver, sends))
    return len(sends)


def http_client(settings: Settings) -> httpx.Client:
    """The worker's client: no redirects, no proxies from the environment, bounded time."""
    return httpx.Client(
        timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
    )
