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
NetworkId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]
NetworkAmount = Annotated[JsonDecimal, Field(gt=0, le=Decimal("1e12"))]
BillingAmount = Annotated[
    JsonDecimal | None,
    Field(
        gt=0,
        le=Decimal("1e12"),
        description="What the card is charged, in the card's currency, for an amount in another "
        "currency (the network's conversion); the limits count it",
    ),
]
Mcc = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{4}$",
        description="The merchant category code (ISO 18245), four digits",
        examples=["5812"],
    ),
]
Country = Annotated[
    str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2", examples=["DE"])
]
MccList = Annotated[list[Mcc], Field(max_length=500)]


class CardCreate(WriteSchema):
    user_id: uuid.UUID
    currency: CurrencyCode
    spending_limits: Limits = Field(default_factory=list)
    allowed_categories: CategoryIds | None = None
    blocked_categories: CategoryIds | None = None
    allowed_mccs: MccList | None = None
    blocked_mccs: MccList | None = None
    label: Annotated[str, Field(max_length=200)] | None = None


class CardUpdate(UpdateSchema):
    nullable = frozenset(
        {"label", "allowed_categories", "blocked_categories", "allowed_mccs", "blocked_mccs"}
    )

    spending_limits: Limits | None = None
    allowed_categories: CategoryIds | None = None
    blocked_categories: CategoryIds | None = None
    allowed_mccs: MccList | None = None
    blocked_mccs: MccList | None = None
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
    allowed_mccs: list[str] = Field(default_factory=list)
    blocked_mccs: list[str] = Field(default_factory=list)
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
    amount: NetworkAmount
    currency: CurrencyCode
    merchant_name: Annotated[str, Field(min_length=1, max_length=200)]
    merchant_country: Country | None = None
    mcc: Mcc | None = None
    category_id: uuid.UUID | None = None
    authorization_id: NetworkId
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


class CaptureRequest(WriteSchema):
    """The purchase cleared: all or part of what was authorized, or more within the tolerance
    (a tip). Several captures may follow one authorization."""

    capture_id: NetworkId
    authorization_id: NetworkId
    amount: NetworkAmount
    currency: CurrencyCode = Field(description="The authorization's currency")
    billing_amount: BillingAmount = None


class ReversalRequest(WriteSchema):
    """The hold released, in full (no amount) or in part."""

    reversal_id: NetworkId
    authorization_id: NetworkId
    amount: NetworkAmount | None = Field(
        default=None, description="In the authorization's currency; none: all that is held"
    )
    currency: CurrencyCode | None = None
    billing_amount: BillingAmount = None


class RefundRequest(WriteSchema):
    """Money back to the card: for an authorization (up to what it captured), or, when the
    network has none to link it to, for the card itself."""

    refund_id: NetworkId
    authorization_id: NetworkId | None = None
    card_id: uuid.UUID | None = Field(default=None, description="Needed without authorization_id")
    amount: NetworkAmount
    currency: CurrencyCode
    billing_amount: BillingAmount = None
    merchant_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    merchant_country: Country | None = None
    mcc: Mcc | None = None

    @model_validator(mode="after")
    def _linked(self) -> Self:
        if self.authorization_id is None and (self.card_id is None or self.merchant_name is None):
            raise ValueError("a refund without authorization_id needs card_id and merchant_name")
        return self


class CardTransactionRead(Schema):
    """One line of a card's history: an authorization (approved or declined, with its reason)
    or what followed one."""

    id: uuid.UUID
    type: str = Field(description="authorization | capture | reversal | refund")
    card_id: uuid.UUID
    network_id: str = Field(description="The network's id of this event")
    authorization_id: str | None = Field(description="The network's id of the authorization")
    amount: Decimal
    currency: str
    billed_amount: Decimal
    billed_currency: str
    merchant_name: str
    merchant_country: str | None
    mcc: str | None
    approved: bool | None = Field(description="An authorization's answer; null for the others")
    decline_reason: str | None
    spend_id: uuid.UUID | None
    hold: Decimal | None = Field(
        default=None, description="An approval's amount still held (card currency)"
    )
    captured: Decimal | None = Field(default=None, description="An approval's captured total")
    created_at: datetime

    @field_serializer("amount")
    def _amount(self, value: Decimal) -> str:
        return str(quantize(value, self.currency))

    @field_serializer("billed_amount", "hold", "captured")
    def _billed(self, value: Decimal | None) -> str | None:
        return None if value is None else str(quantize(value, self.billed_currency))


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
    merchant_country: str | None = None
    mcc: str | None = None
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
