from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity


class Company(Entity):
    __tablename__ = "company"

    name: Mapped[str] = mapped_column(String(200))
    base_currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # SHA-256 of the card-network / directory-sync secret; the secret itself is shown once.
    webhook_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The secret a rotation replaced, still accepted until then (a processor keeps working while
    # it is given the new one); none when the rotation asked for no overlap.
    previous_webhook_secret_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_webhook_secret_expires_at: Mapped[datetime | None]
