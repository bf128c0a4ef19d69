"""Events, and the endpoints they are delivered to.

An event is an audit entry of a public kind: the audit log is written in the same transaction as
the change it records, in each company's commit order (`seq`, under the chain head's lock), so
it is the outbox. The feed reads it by `seq`; each endpoint's deliveries are filled from it by
the worker, which moves the endpoint's `cursor_seq` in the same transaction. Nothing is added to
the write path of a change, and an event can neither be lost nor be seen before its change
commits.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.audit.models import AuditLog
from spendtrackr.apps.webhooks.models import (
    ALL,
    EVENT_TYPES,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    actions_for,
)
from spendtrackr.core.db import force_index, get_in_company_or_404
from spendtrackr.core.pagination import PageParams, paginate

ENDPOINT_NOT_FOUND = "Webhook endpoint not found"
DELIVERY_NOT_FOUND = "Webhook delivery not found"


def event_body(entry: AuditLog) -> dict[str, Any]:
    """An event as the feed lists it and a webhook sends it (a Standard Webhooks payload:
    `type`, `timestamp`, `data`). `data` names the object and what the change recorded; the
    object itself is read from the API, with the reader's own permissions."""
    meta = {k: v for k, v in entry.meta.items() if k != "digest"}
    data: dict[str, Any] = {"object": entry.entity_type, "id": entry.entity_id, **meta}
    if entry.action.startswith("approval.") and entry.action != "approval.requested":
        data["decision"] = entry.action.removeprefix("approval.")
    if entry.action.startswith("receipt.ocr_"):
        data["ocr_status"] = "done" if entry.action == "receipt.ocr_completed" else "failed"
    return {
        "id": str(entry.id),
        "type": EVENT_TYPES[entry.action],
        "timestamp": entry.created_at.isoformat().replace("+00:00", "Z"),
        "sequence": entry.seq,
        "actor_id": None if entry.actor_id is None else str(entry.actor_id),
        "data": data,
    }


def events_after(
    session: Session,
    *,
    company_id: uuid.UUID,
    after: int,
    types: list[str],
    limit: int,
    since: datetime,
) -> list[AuditLog]:
    """Up to `limit` events after sequence `after`, oldest first, none older than `since`."""
    # Entries take their time under the chain head's lock, so time follows the sequence (to
    # the clocks' skew between servers, at a retention horizon days old): the feed starts at
    # the first entry kept instead of reading every older one to filter it out.
    first_kept = session.scalar(
        select(AuditLog.seq)
        .where(AuditLog.company_id == company_id, AuditLog.created_at >= since)
        .order_by(AuditLog.created_at)
        .limit(1)
    )
    if first_kept is None:
        return []
    stmt = (
        select(AuditLog)
        .where(
            AuditLog.company_id == company_id,
            AuditLog.seq > max(after, first_kept - 1),
            AuditLog.action.in_(actions_for(types or [ALL])),
            AuditLog.created_at >= since,
        )
        .order_by(AuditLog.seq)
        .limit(limit)
    )
    # Some types: the optimizer weighs the (company, action) index against the sequence.
    return list(session.scalars(stmt if types else force_index(stmt, AuditLog, audit.CHAIN_ORDER)))


def event_by_id(session: Session, event_id: uuid.UUID) -> AuditLog | None:
    return session.get(AuditLog, event_id)


# --- secrets --------------------------------------------------------------------------------------


def new_secret() -> str:
    """`whsec_` and 24 random bytes in base64, as the Standard Webhooks libraries read it."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def seal(key: bytes, secret: str) -> str:
    return Fernet(key).encrypt(secret.encode()).decode()


def unseal(key: bytes, sealed: str) -> str | None:
    """The secret, or None when it was sealed with another key (WEBHOOK_SECRET_KEY changed)."""
    try:
        return Fernet(key).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


# --- endpoints ------------------------------------------------------------------------------------


def get_endpoint_or_404(
    session: Session, *, company_id: uuid.UUID, endpoint_id: uuid.UUID, for_update: bool = False
) -> WebhookEndpoint:
    return get_in_company_or_404(
        session,
        WebhookEndpoint,
        endpoint_id,
        company_id,
        detail=ENDPOINT_NOT_FOUND,
        for_update=for_update,
    )


def list_endpoints(
    session: Session, *, company_id: uuid.UUID, page: PageParams
) -> tuple[int, list[WebhookEndpoint]]:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.company_id == company_id)
    return paginate(
        session, stmt.order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id), page
    )


def create_endpoint(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    fields: dict[str, Any],
    sealed_secret: str,
) -> WebhookEndpoint:
    """A new endpoint receives the events that follow it: its cursor starts at the company's
    audit head (the entry recording its creation is not sent to it)."""
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        company_id=company_id,
        secret_enc=sealed_secret,
        cursor_seq=audit.head_seq(session, company_id=company_id),
        **fields,
    )
    session.add(endpoint)
    session.flush()
    audit.record_change(
        session, endpoint, "webhook_endpoint.created", actor_id=actor_id, metadata=fields
    )
    return endpoint


def delete_endpoint(session: Session, *, endpoint: WebhookEndpoint, actor_id: uuid.UUID) -> None:
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    audit.record_change(
        session,
        endpoint,
        "webhook_endpoint.deleted",
        actor_id=actor_id,
        metadata={"url": endpoint.url},
    )


def secrets_of(key: bytes, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets a delivery is signed with: the current one, and the replaced one while its
    overlap lasts (a receiver that has either verifies)."""
    found = [unseal(key, endpoint.secret_enc)]
    if (
        endpoint.previous_secret_enc is not None
        and endpoint.previous_expires_at is not None
        and endpoint.previous_expires_at > now
    ):
        found.append(unseal(key, endpoint.previous_secret_enc))
    return [s for s in found if s is not None]


# --- deliveries -----------------------------------------------------------------------------------


def list_deliveries(
    session: Session, *, endpoint_id: uuid.UUID, page: PageParams
) -> tuple[int, list[WebhookDelivery]]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    return paginate(
        session, stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id), page
    )


def attempts_of(
    session: Session, delivery_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    found: dict[uuid.UUID, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        rows = session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.attempted_at)
        )
        for attempt in rows:
            found[attempt.delivery_id].append(attempt)
    return found


def get_delivery_or_404(
    session: Session, *, company_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    return get_in_company_or_404(
        session,
        WebhookDelivery,
        delivery_id,
        company_id,
        detail=DELIVERY_NOT_FOUND,
        for_update=True,
    )


def fill_outbox(session: Session, endpoint: WebhookEndpoint, *, now: datetime, limit: int) -> int:
    """Deliveries for the endpoint's events since its cursor (the endpoint row is locked by the
    caller); the cursor moves past every entry read, sent or not."""
    entries = session.execute(
        force_index(
            select(AuditLog.id, AuditLog.seq, AuditLog.action)
            .where(AuditLog.company_id == endpoint.company_id, AuditLog.seq > endpoint.cursor_seq)
            .order_by(AuditLog.seq)
            .limit(limit),
            AuditLog,
            audit.CHAIN_ORDER,
        )
    ).all()
    if not entries:
        return 0
    wanted = set(actions_for(endpoint.event_types))
    new = [
        WebhookDelivery(
            id=uuid.uuid4(),
            company_id=endpoint.company_id,
            endpoint_id=endpoint.id,
            event_id=entry_id,
            event_type=EVENT_TYPES[action],
            sequence=seq,
            status=DeliveryStatus.pending,
            next_attempt_at=now,
        )
        for entry_id, seq, action in entries
        if action in wanted
    ]
    session.add_all(new)
    endpoint.cursor_seq = entries[-1].seq
    return len(new)


def endpoints_to_fill(session: Session, *, limit: int) -> list[WebhookEndpoint]:
    """Enabled endpoints no other worker is filling, locked."""
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.enabled.is_(True))
            .order_by(WebhookEndpoint.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def claim_due(
    session: Session, *, now: datetime, lease: timedelta, limit: int
) -> list[WebhookDelivery]:
    """Due deliveries of enabled endpoints, taken for `lease`: a worker that dies holding one
    leaves it due again when the lease ends."""
    due = list(
        session.scalars(
            select(WebhookDelivery)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.pending,
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.enabled.is_(True),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
    )
    for delivery in due:
        delivery.next_attempt_at = now + lease
    return due


def disable_endpoint(session: Session, endpoint_id: uuid.UUID, reason: str) -> None:
    session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(enabled=False, disabled_reason=reason[:500])
    )
