from __future__ import annotations

import uuid
from datetime import datetime

from spendtrackr.core.schemas import Schema


class NotificationRead(Schema):
    id: uuid.UUID
    kind: str
    message: str
    entity_type: str | None
    entity_id: uuid.UUID | None
    read_at: datetime | None
    created_at: datetime


class ReadAllResult(Schema):
    status: str = "ok"
    updated: int
