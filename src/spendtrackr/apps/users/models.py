from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, Entity, StrEnumType, utcnow


class Role(StrEnum):
    employee = "employee"
    manager = "manager"
    finance = "finance"
    admin = "admin"


class User(Entity):
    __audit_entity__ = "user"
    __tablename__ = "user"
    __table_args__ = (
        Index("ix_user_company_role_active", "company_id", "role", "is_active"),
        Index("ix_user_company_created", "company_id", "created_at"),
        Index("ix_user_company_updated", "company_id", "updated_at", "id"),
        # One person may be a user of several companies: an email is unique within a company,
        # among the users not deleted (a deleted user's email can be given to someone new).
        UniqueConstraint("company_id", "email_claim"),
        Index("ix_user_email", "email"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    email: Mapped[str] = mapped_column(String(320))
    # The email while the user is not deleted, null after: what the uniqueness holds on.
    email_claim: Mapped[str | None] = mapped_column(String(320))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(StrEnumType(Role, 16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), index=True)
    # Bumped on deactivation and password change: sessions stamped with an older value are dead.
    token_version: Mapped[int] = mapped_column(default=0)
    deactivated_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class UserInvite(Base):
    __tablename__ = "user_invite"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamMember(Base):
    """A user's membership of a team. Owned by users (a user's teams are part of the user); the
    teams domain adds and removes members through this domain's service."""

    __tablename__ = "team_member"
    __table_args__ = (Index("ix_team_member_company_user", "company_id", "user_id"),)

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("team.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthSession(Entity):
    """A login: the family of its rotating refresh tokens, and what access tokens point at (`sid`).

    Revoking it (logout, refresh-token reuse) kills its access tokens at once, since every request
    checks its session.
    """

    __audit_entity__ = "auth_session"

    __tablename__ = "auth_session"

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), index=True)
    token_version: Mapped[int]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
