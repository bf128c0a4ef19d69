from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, EmailStr, Field

from spendtrackr.apps.users.models import Role
from spendtrackr.core.schemas import Name


class Event(BaseModel):
    """One directory event; `data` is checked against its type's schema before anything applies."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="The provider's event id: an id seen before is skipped. Without one, the "
        "event is known by its content (see the operation's description)",
    )
    type: Annotated[str, Field(min_length=1, max_length=64)]
    data: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = Field(
        default=None,
        validation_alias=AliasChoices("occurred_at", "timestamp"),
        description="When the change happened at the provider (`timestamp` is read too); part of "
        "an event's content key when it has no `id`",
    )


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


class RoleAssigned(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: EmailStr
    role: Role


class Membership(BaseModel):
    """A person joins or leaves a team, named as the directory names its group."""

    model_config = ConfigDict(extra="ignore")
    email: EmailStr
    team: Name = Field(validation_alias=AliasChoices("team", "team_name", "group"))


class MembershipAdded(Membership):
    pass


class MembershipRemoved(Membership):
    pass


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    applied: int = 0
    skipped: int = 0
    ignored: int = 0
