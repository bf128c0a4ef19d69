from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field

from spendtrackr.apps.apikeys.models import Scope
from spendtrackr.core.schemas import Name, Schema, WriteSchema


class ApiKeyCreate(WriteSchema):
    name: Name
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the key stops working (null: until revoked)"
    )


class ApiKeyRead(Schema):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    scopes: list[Scope]
    created_by: uuid.UUID
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Within a minute")


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(
        description="`stk_...`: shown once. Send it as `Authorization: Bearer stk_...`"
    )
