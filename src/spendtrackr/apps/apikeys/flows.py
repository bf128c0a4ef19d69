"""API keys as admins manage them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from spendtrackr.apps.apikeys import service
from spendtrackr.apps.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from spendtrackr.apps.users.models import User
from spendtrackr.core.errors import ValidationFailed
from spendtrackr.core.pagination import Page, PageParams


def create_key(
    session: Session, *, actor: User, body: ApiKeyCreate, now: datetime
) -> ApiKeyCreated:
    if body.expires_at is not None and body.expires_at <= now:
        raise ValidationFailed("expires_at: must be in the future", code="invalid_expiry")
    key, raw = service.create_key(
        session,
        company_id=actor.company_id,
        actor_id=actor.id,
        name=body.name,
        scopes=[s.value for s in body.scopes],
        expires_at=body.expires_at,
    )
    return ApiKeyCreated.model_validate({**ApiKeyRead.model_validate(key).model_dump(), "key": raw})


def list_keys(session: Session, *, actor: User, page: PageParams) -> Page[ApiKeyRead]:
    total, keys = service.list_keys(session, company_id=actor.company_id, page=page)
    return Page(total=total, items=[ApiKeyRead.model_validate(k) for k in keys])


def get_key(session: Session, *, actor: User, key_id: uuid.UUID) -> ApiKeyRead:
    return ApiKeyRead.model_validate(
        service.get_key_or_404(session, company_id=actor.company_id, key_id=key_id)
    )


def revoke_key(session: Session, *, actor: User, key_id: uuid.UUID, now: datetime) -> None:
    key = service.get_key_or_404(session, company_id=actor.company_id, key_id=key_id)
    service.revoke(session, key=key, actor_id=actor.id, now=now)
