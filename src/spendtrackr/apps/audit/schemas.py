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
