from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, utcnow


class AuditLog(Base):
    """Append-only. No foreign key to users (deleting one never touches its history); the company
    key has no cascade. On MySQL/MariaDB and SQLite, triggers reject UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("company_id", "seq"),
        Index("ix_audit_log_company_created", "company_id", "created_at"),
        Index("ix_audit_log_company_action", "company_id", "action"),
        Index("ix_audit_log_company_entity", "company_id", "entity_type", "entity_id"),
        # One entity's history, its type named or not (`GET /audit-logs?entity_id=`).
        Index("ix_audit_log_company_entity_id", "company_id", "entity_id", "seq"),
        Index("ix_audit_log_company_actor", "company_id", "actor_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"))
    seq: Mapped[int] = mapped_column(BigInteger)
    actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last link of a company's chain; locked (FOR UPDATE) by every append."""

    __tablename__ = "audit_chain_head"

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
