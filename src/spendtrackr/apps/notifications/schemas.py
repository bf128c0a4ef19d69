from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from babel import Locale, UnknownLocaleError
from pydantic import Field, field_validator

from spendtrackr.apps.notifications.models import KINDS, Digest
from spendtrackr.core.schemas import Schema, WriteSchema


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


Channel = Literal["email", "in_app"]
Channels = Annotated[list[Channel], Field(max_length=2)]


def _known_kinds(value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kinds: {', '.join(unknown)} (known: {', '.join(KINDS)})")
    return {kind: sorted(set(channels)) for kind, channels in value.items()}


class Preferences(Schema):
    channels: dict[str, list[Channel]] = Field(
        description="Every kind of notification and where it goes: `email`, `in_app`, both, or "
        "neither (`[]`)"
    )
    digest: Digest = Field(description="A summary email: daily, weekly or off")
    locale: str | None = Field(
        default=None,
        description="How amounts and dates are written in your emails (`de_DE`, `fr`...); null: "
        "the service's EMAIL_LOCALE",
    )


class PreferencesUpdate(WriteSchema):
    channels: dict[str, Channels] | None = Field(
        default=None,
        description="The kinds to change (others keep theirs); invites, escalations and disabled "
        "webhook endpoints are always emailed",
    )
    digest: Digest | None = None
    locale: Annotated[str, Field(max_length=16)] | None = None

    _kinds = field_validator("channels")(_known_kinds)

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(Locale.parse(value.replace("-", "_")))
        except (ValueError, UnknownLocaleError):
            raise ValueError(f"unknown locale {value!r}") from None


class Unsubscribed(Schema):
    status: Literal["unsubscribed"] = "unsubscribed"
    kind: str
