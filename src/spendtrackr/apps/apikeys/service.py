"""API keys: issued by an admin, shown once, looked up by their hash."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from spendtrackr.apps.apikeys.models import ApiKey
from spendtrackr.apps.audit import service as audit
from spendtrackr.core.db import get_in_company_or_404
from spendtrackr.core.errors import NotFound
from spendtrackr.core.pagination import PageParams, paginate

PREFIX = "stk_"
KEY_NOT_FOUND = "API key not found"
# last_used_at is written at most this often per key: a key polling every second would
# otherwise turn each of its reads into a write.
TOUCH_EVERY = timedelta(minutes=1)


def is_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
) -> tuple[ApiKey, str]:
    raw = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=uuid.uuid4(),
        company_id=company_id,
        name=name,
        prefix=raw[:12],
        key_hash=digest(raw),
        scopes=sorted(set(scopes)),
        created_by=actor_id,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    audit.record_change(
        session,
        key,
        "api_key.created",
        actor_id=actor_id,
        metadata={"name": name, "scopes": key.scopes, "expires_at": expires_at},
    )
    return key, raw


def list_keys(
    session: Session, *, company_id: uuid.UUID, page: PageParams
) -> tuple[int, list[ApiKey]]:
    stmt = select(ApiKey).where(ApiKey.company_id == company_id, ApiKey.revoked_at.is_(None))
    return paginate(session, stmt.order_by(ApiKey.created_at.desc(), ApiKey.id), page)


def get_key_or_404(session: Session, *, company_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """A key of the company that is not revoked (a revoked key is gone, for its admins too)."""
    key = get_in_company_or_404(session, ApiKey, key_id, company_id, detail=KEY_NOT_FOUND)
    if key.revoked_at is not None:
        raise NotFound(KEY_NOT_FOUND)
    return key


def revoke(session: Session, *, key: ApiKey, actor_id: uuid.UUID, now: datetime) -> None:
    key.revoked_at = now
    audit.record_change(session, key, "api_key.revoked", actor_id=actor_id)


_BY_HASH = select(ApiKey).where(ApiKey.key_hash == bindparam("key_hash"))


def authenticate(session: Session, raw: str, *, now: datetime) -> ApiKey | None:
    """The live key `raw` is, or None (unknown, revoked or expired: the caller cannot tell
    which)."""
    key = session.scalars(_BY_HASH, {"key_hash": digest(raw)}).one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    if key.expires_at is not None and key.expires_at <= now:
        return None
    if key.last_used_at is None or key.last_used_at < now - TOUCH_EVERY:
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return key
