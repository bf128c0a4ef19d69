from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, utcnow


class ScimToken(Base):
    """The bearer token an identity provider provisions a company with (kept hashed)."""

    __tablename__ = "scim_token"

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScimResource(Base):
    """A User (one of the company's users) or Group (one of its teams) as the provider last
    wrote it: the whole SCIM resource is kept, so every attribute it sends reads back; the
    ones SpendTrackr acts on (email, name, active; a group's name and members) are applied to
    the user or team."""

    __tablename__ = "scim_resource"
    __table_args__ = (
        UniqueConstraint("company_id", "kind", "key"),
        Index("ix_scim_resource_company_kind_external", "company_id", "kind", "external_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the user's or the team's id
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    kind: Mapped[str] = mapped_column(String(8))  # User | Group
    key: Mapped[str] = mapped_column(String(320))  # userName (lower case) or displayName
    external_id: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)
