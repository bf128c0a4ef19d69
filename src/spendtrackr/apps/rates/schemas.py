from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import Field, field_serializer

from spendtrackr.core.currency import CurrencyCode, JsonDecimal, PlainText
from spendtrackr.core.schemas import JsonDate, Schema, WriteSchema

RateValue = Annotated[JsonDecimal, Field(gt=0, le=Decimal("1e12"), decimal_places=10), PlainText]


class RateCreate(WriteSchema):
    date: JsonDate
    base: CurrencyCode
    quote: CurrencyCode
    rate: RateValue = Field(description="Units of `quote` one unit of `base` buys")


class RateRead(Schema):
    id: uuid.UUID
    date: dt.date = Field(validation_alias="rate_date")
    base: str
    quote: str
    rate: Decimal
    source: str = Field(description="ecb or csv (imported for everyone), manual (this company's)")
    company_rate: bool = Field(default=False, description="This company's own rate")

    @field_serializer("rate")
    def _rate(self, value: Decimal) -> str:
        return format(value.normalize(), "f")


class Conversion(Schema):
    amount: str
    currency: str
    converted: str
    to: str
    rate: str
    rate_date: dt.date
