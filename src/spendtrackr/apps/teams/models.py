from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity


class Team(Entity):
    __audit_entity__ = "team"
    __tablename__ = "team"
    __table_args__ = (
        UniqueConstraint("company_id", "name"),
        Index("ix_team_company_created", "company_id", "created_at"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    name: Mapped[str] = mapped_column(String(200))
    manager_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), index=True)
    # The department (class, tracking category) its spends are booked under in the ledger.
    gl_code: Mapped[str | None] = mapped_column(String(32))
