from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, StringConstraints, field_validator

from spendtrackr.apps.webhooks.models import ALL, TYPES, DeliveryStatus
from spendtrackr.apps.webhooks.sender import check_url
from spendtrackr.core.schemas import Schema, UpdateSchema, WriteSchema

Url = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    Field(
        description="http(s) URL the events are POSTed to",
        examples=["https://erp.example.com/hooks/spendtrackr"],
    ),
]
EventTypes = Annotated[
    list[str],
    Field(
        min_length=1,
        max_length=50,
        description=f'Event types to send, or `["*"]` for all: {", ".join(TYPES)}',
        examples=[["spend.approved", "spend.rejected"]],
    ),
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


def _valid_url(value: str) -> str:
    check_url(value)
    return value


def _valid_types(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - {*TYPES, ALL})
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    return sorted(set(value))


class EndpointCreate(WriteSchema):
    url: Url
    event_types: EventTypes = Field(default_factory=lambda: [ALL])
    description: Description | None = None
    enabled: StrictBool = True

    _url = field_validator("url")(_valid_url)
    _types = field_validator("event_types")(_valid_types)


class EndpointUpdate(UpdateSchema):
    nullable = frozenset({"description"})

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: StrictBool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _valid_url(value)

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _valid_types(value)


class EndpointRead(Schema):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the endpoint was turned off: by an admin (null) or after its "
        "deliveries failed for three days"
    )
    previous_secret_valid_until: datetime | None = Field(
        default=None,
        validation_alias="previous_expires_at",
        description="While set, deliveries are signed with the replaced secret too",
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointRead):
    secret: str = Field(description="`whsec_...`: shown once; verify `webhook-signature` with it")


class SecretRotation(WriteSchema):
    previous_expires_in_seconds: StrictInt = Field(
        default=24 * 3600,
        ge=0,
        le=7 * 24 * 3600,
        description="How long deliveries are signed with the replaced secret too (default a "
        "day, at most 7 days; 0: at once only the new one)",
    )


class RotatedSecret(Schema):
    secret: str = Field(description="The new `whsec_...` secret, shown once")
    previous_valid_until: datetime | None


class AttemptRead(Schema):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


class DeliveryRead(Schema):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    sequence: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(
        description="When it is sent next (pending), null once it succeeded or failed for good"
    )
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptRead] = Field(default_factory=list)


class EventRead(Schema):
    id: uuid.UUID = Field(description="Also the `webhook-id` of its deliveries")
    type: str
    timestamp: datetime
    sequence: int = Field(description="Increases with every change in the company, in commit order")
    actor_id: uuid.UUID | None
    data: dict[str, Any] = Field(
        description="`object` and `id` name what changed; the rest is what the change recorded"
    )


class EventPage(Schema):
    items: list[EventRead]
    next_cursor: str = Field(
        description="Pass as `after` next time: the last listed event's sequence, or the `after` "
        "given when nothing new has happened (poll again with it)"
    )
    has_more: bool
