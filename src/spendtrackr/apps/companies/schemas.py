from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from spendtrackr.core.currency import CurrencyCode
from spendtrackr.core.schemas import Name, Schema, UpdateSchema


class CompanyRead(Schema):
    id: uuid.UUID
    name: str
    base_currency: str
    created_at: datetime


class CompanyUpdate(UpdateSchema):
    name: Name | None = None
    base_currency: CurrencyCode | None = None


class WebhookSecret(Schema):
    secret: str = Field(description="Shown once; send it as `x-webhook-secret`")
