from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, StrictInt

from spendtrackr.core.currency import CurrencyCode
from spendtrackr.core.schemas import Name, Schema, UpdateSchema, WriteSchema


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from None
    return value


TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_check_timezone)]


class CompanyRead(Schema):
    id: uuid.UUID
    name: str
    base_currency: str
    timezone: str = Field(description="Card limit windows (daily, monthly...) follow this zone")
    created_at: datetime


class CompanyUpdate(UpdateSchema):
    name: Name | None = None
    base_currency: CurrencyCode | None = None
    timezone: TimeZone | None = None


class WebhookSecret(Schema):
    secret: str = Field(description="Shown once; send it as `x-webhook-secret`")
    previous_valid_until: datetime | None = Field(
        default=None, description="When the replaced secret stops working (null: it already has)"
    )


class WebhookSecretRotation(WriteSchema):
    previous_expires_in_seconds: StrictInt = Field(
        default=0,
        ge=0,
        le=7 * 24 * 3600,
        description="How long the replaced secret keeps working (at most 7 days; 0: it stops "
        "at once)",
    )
