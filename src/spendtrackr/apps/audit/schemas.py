from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from spendtrackr.core.schemas import Schema


class AuditEntryRead(Schema):
    id: uuid.UUID
    actor_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: str | None
    metadata: dict[str, Any] = Field(validation_alias="meta")
    created_at: datetime
    hash: str


class VerifyResult(Schema):
    valid: bool
    checked: int
    first_invalid_id: uuid.UUID | None
    deep: DeepResult | None = Field(
        default=None, description="With `?deep=true`: the rows checked against the log"
    )


class MismatchRead(Schema):
    entity_type: str = Field(description="spend, approval or journal (a ledger entry)")
    entity_id: str
    reason: str


class DeepResult(Schema):
    checked: int = Field(description="Spends, decided approval steps and journals compared")
    mismatches: list[MismatchRead] = Field(
        description="Rows whose money fields differ from their last audit entry (at most 1000)"
    )
