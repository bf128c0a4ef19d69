from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from spendtrackr.core.schemas import GLCode, Name, Schema, UpdateSchema, WriteSchema


class TeamRead(Schema):
    id: uuid.UUID
    name: str
    manager_id: uuid.UUID | None
    gl_code: str | None = Field(
        default=None, description="The department its spends are booked under in the ledger"
    )
    member_ids: list[uuid.UUID] = Field(default_factory=list)
    created_at: datetime


class TeamCreate(WriteSchema):
    name: Name
    manager_id: uuid.UUID | None = None
    gl_code: GLCode | None = None


class TeamUpdate(UpdateSchema):
    nullable = frozenset({"manager_id", "gl_code"})

    name: Name | None = None
    manager_id: uuid.UUID | None = None
    gl_code: GLCode | None = None


class MemberAdd(WriteSchema):
    user_id: uuid.UUID


class TeamMemberRead(Schema):
    team_id: uuid.UUID
    user_id: uuid.UUID
    created_at: datetime
