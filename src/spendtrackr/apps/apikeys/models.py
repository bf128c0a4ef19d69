from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity


class Scope(StrEnum):
    """What a key may do. Each route an API key may call needs one (`apikeys.scopes.ROUTES`)."""

    spends_read = "spends:read"
    spends_write = "spends:write"
    cards_read = "cards:read"
    reports_read = "reports:read"
    exports_read = "exports:read"
    exports_write = "exports:write"
    users_read = "users:read"
    audit_read = "audit:read"
    events_read = "events:read"
    webhooks_manage = "webhooks:manage"


class ApiKey(Entity):
    """A machine client's key: kept as its SHA-256 (the key is 256 random bits: a slow hash would
    add nothing), shown once."""

    __audit_entity__ = "api_key"
    __tablename__ = "api_key"
    __table_args__ = (Index("ix_api_key_company_created", "company_id", "created_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
