from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity


class Policy(Entity):
    __audit_entity__ = "policy"
    __tablename__ = "policy"
    __table_args__ = (
        Index("ix_policy_company_active", "company_id", "is_active"),
        Index("ix_policy_company_created", "company_id", "created_at"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    # Validated rules (`rules.Rule`), stored as JSON with aliases (`not`) and without nulls.
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
