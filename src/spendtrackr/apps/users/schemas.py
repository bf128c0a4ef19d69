from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import EmailStr, Field, StrictBool

from spendtrackr.apps.users.models import Role
from spendtrackr.core.schemas import Name, Password, Schema, UpdateSchema, WriteSchema


class UserRead(Schema):
    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    company_id: uuid.UUID
    manager_id: uuid.UUID | None
    team_ids: list[uuid.UUID] = Field(default_factory=list)
    is_active: bool
    created_at: datetime
    updated_at: datetime


class UserCreated(UserRead):
    invite_token: str | None = Field(
        default=None, description="Shown once, when the user was created without a password"
    )


class UserCreate(WriteSchema):
    email: EmailStr
    full_name: Name
    role: Role = Role.employee
    password: Password | None = None
    manager_id: uuid.UUID | None = None


class UserUpdate(UpdateSchema):
    nullable = frozenset({"manager_id"})

    full_name: Name | None = None
    role: Role | None = None
    manager_id: uuid.UUID | None = None
    is_active: StrictBool | None = None


class MeUpdate(UpdateSchema):
    full_name: Name | None = None
    current_password: str | None = Field(default=None, max_length=1024)
    new_password: Password | None = None


class PersonName(Schema):
    id: uuid.UUID
    full_name: str


class PeopleNames(Schema):
    items: list[PersonName]
