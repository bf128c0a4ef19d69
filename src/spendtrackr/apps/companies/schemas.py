from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, StrictInt, field_serializer

from spendtrackr.core.currency import CurrencyCode, JsonDecimal
from spendtrackr.core.schemas import Name, Schema, UpdateSchema, WriteSchema


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from None
    return value


TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_check_timezone)]


Interval = Literal["per_authorization", "daily", "weekly", "monthly", "yearly", "all_time"]
LimitAmount = Annotated[JsonDecimal, Field(gt=0, le=Decimal("1e12"))]


class CardLimit(WriteSchema):
    amount: LimitAmount
    interval: Interval


class CardLimitRead(Schema):
    amount: Decimal
    interval: Interval

    @field_serializer("amount")
    def _amount(self, amount: Decimal) -> str:
        return str(amount)


def _one_per_interval(limits: list[CardLimit]) -> list[CardLimit]:
    seen: set[str] = set()
    for limit in limits:
        if limit.interval in seen:
            raise ValueError(f"one limit per interval: {limit.interval} is given twice")
        seen.add(limit.interval)
    return limits


CardLimits = Annotated[list[CardLimit], Field(max_length=12), AfterValidator(_one_per_interval)]


class CompanyRead(Schema):
    id: uuid.UUID
    name: str
    base_currency: str
    timezone: str = Field(description="Card limit windows (daily, monthly...) follow this zone")
    max_card_limits: list[CardLimitRead] = Field(
        description="The most a card may be allowed per window, in the base currency"
    )
    directory_may_grant_admin: bool = Field(
        description="Whether directory sync may make a user an admin"
    )
    approval_reminder_hours: int = Field(
        description="A step pending this long reminds its approvers, then once a day"
    )
    approval_escalation_hours: int = Field(
        description="A step pending this long is escalated: the approver's manager, else the "
        "admins, may decide it too"
    )
    created_at: datetime


class CompanyUpdate(UpdateSchema):
    name: Name | None = None
    base_currency: CurrencyCode | None = None
    timezone: TimeZone | None = None
    max_card_limits: CardLimits | None = Field(
        default=None,
        description="Company-wide ceilings of card limits, in the base currency: no card may be "
        "given more for a window, a card without a limit for a capped window gets the "
        "ceiling, and cards above a new ceiling are lowered to it. `[]` removes them.",
    )
    directory_may_grant_admin: bool | None = None
    approval_reminder_hours: StrictInt | None = Field(default=None, ge=1, le=24 * 30)
    approval_escalation_hours: StrictInt | None = Field(default=None, ge=1, le=24 * 90)


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
