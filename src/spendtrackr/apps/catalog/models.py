from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity


class Vendor(Entity):
    __audit_entity__ = "vendor"
    __tablename__ = "vendor"
    __table_args__ = (
        UniqueConstraint("company_id", "name"),
        Index("ix_vendor_company_created", "company_id", "created_at"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    name: Mapped[str] = mapped_column(String(200))


class Category(Entity):
    __audit_entity__ = "category"
    __tablename__ = "category"
    __table_args__ = (
        UniqueConstraint("company_id", "name"),
        Index("ix_category_company_created", "company_id", "created_at"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    name: Mapped[str] = mapped_column(String(200))
    gl_code: Mapped[str | None] = mapped_column(String(32))
