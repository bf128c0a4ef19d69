from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, utcnow


class RefreshToken(Base):
    __tablename__ = "refresh_token"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("auth_session.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SsoConfig(Base):
    """A company's OpenID Connect provider: who may sign in through it and as what."""

    __tablename__ = "sso_config"

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_enc: Mapped[str] = mapped_column(String(1000))
    allowed_domains: Mapped[list[str]] = mapped_column(JSON)
    default_role: Mapped[str] = mapped_column(String(16))
    sso_required: Mapped[bool] = mapped_column(default=False)
    create_users: Mapped[bool] = mapped_column(default=False)  # just-in-time creation
    frontend_url: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SsoLogin(Base):
    """One sign-in through a provider: its state (kept hashed), nonce and PKCE verifier until
    the provider calls back, once; then, for a front end, the one-time code it trades."""

    __tablename__ = "sso_login"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]
    exchange_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    exchanged_at: Mapped[datetime | None]
