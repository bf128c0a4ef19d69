from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from spendtrackr.apps.users.models import Role
from spendtrackr.core.schemas import Name


class Event(BaseModel):
    """One directory event; `data` is checked against its type's schema before anything applies."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=200)]
    type: Annotated[str, Field(min_length=1, max_length=64)]
    data: dict[str, Any] = Field(default_factory=dict)


Events = Annotated[list[Event], Field(max_length=1000)]


class UserCreated(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: EmailStr
    full_name: Name
    role: Role = Role.employee
    manager_email: EmailStr | None = None


class UserUpdated(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: EmailStr
    full_name: Name | None = None
    role: Role | None = None
    is_active: bool | None = None


class UserDeleted(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: EmailStr


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    applied: int = 0
    skipped: int = 0
    ignored: int = 0
