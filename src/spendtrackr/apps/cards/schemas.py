from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import Field, field_serializer, model_validator

from spendtrackr.apps.cards.models import CardStatus
from spendtrackr.apps.companies.schemas import CardLimit, CardLimitRead, CardLimits
from spendtrackr.core.currency import CurrencyCode, JsonDecimal, quantize
from spendtrackr.core.schemas import Schema, UpdateSchema, WriteSchema

CategoryIds = Annotated[list[uuid.UUID], Field(max_length=500)]
SpendingLimit = CardLimit
SpendingLimitRead = CardLimitRead
Limits = CardLimits


class CardCreate(WriteSchema):
    user_id: uuid.UUID
    currency: CurrencyCode
    spending_limits: Limits = Field(default_factory=list)
    allowed_categories: CategoryIds | None = None
    blocked_categories: CategoryIds | None = None
    label: Annotated[str, Field(max_length=200)] | None = None


class CardUpdate(UpdateSchema):
    nullable = frozenset({"label", "allowed_categories", "blocked_categories"})

    spending_limits: Limits | None = None
    allowed_categories: CategoryIds | None = None
    blocked_categories: CategoryIds | None = None
    label: Annotated[str, Field(max_length=200)] | None = None


class CardRead(Schema):
    id: uuid.UUID
    user_id: uuid.UUID
    currency: str
    label: str | None
    status: CardStatus
    last4: str
    exp_month: int
    exp_year: int
    spending_limits: list[SpendingLimitRead]
    allowed_categories: list[uuid.UUID]
    blocked_categories: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="after")
    def _limits_in_minor_units(self) -> Self:
        """Limits read as spends do ("100.00" USD, "1000" JPY), also those stored as given."""
        for limit in self.spending_limits:
            limit.amount = quantize(limit.amount, self.currency)
        return self


class CardIssued(CardRead):
    number: str | None = Field(description="The full card number: in this answer only, never again")
    cvc: str | None = Field(description="In this answer only, never again")


class AuthorizationRequest(WriteSchema):
    card_id: uuid.UUID
    amount: Annotated[JsonDecimal, Field(gt=0, le=Decimal("1e12"))]
    currency: CurrencyCode
    merchant_name: Annotated[str, Field(min_length=1, max_length=200)]
    category_id: uuid.UUID | None = None
    authorization_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]
    billing_amount: Annotated[
        JsonDecimal | None,
        Field(
            gt=0,
            le=Decimal("1e12"),
            description="What the card is charged, in the card's currency, for a purchase in "
            "another currency (the network's conversion); the limits count it. Without it, a "
            "purchase in another currency than the card's is declined `currency_mismatch`",
        ),
    ] = None


class AuthorizationResult(Schema):
    approved: bool
    decline_reason: str | None = None
    spend_id: uuid.UUID | None = None


class AuthorizationRead(Schema):
    id: uuid.UUID
    card_id: uuid.UUID
    authorization_id: str = Field(description="The card network's id")
    amount: Decimal
    currency: str
    billed_amount: Decimal = Field(description="What the card was charged, in its currency")
    billed_currency: str
    merchant_name: str
    category_id: uuid.UUID | None
    approved: bool
    decline_reason: str | None
    spend_id: uuid.UUID | None
    created_at: datetime

    @field_serializer("amount")
    def _amount(self, value: Decimal) -> str:
        return str(quantize(value, self.currency))

    @field_serializer("billed_amount")
    def _billed(self, value: Decimal) -> str:
        return str(quantize(value, self.billed_currency))
