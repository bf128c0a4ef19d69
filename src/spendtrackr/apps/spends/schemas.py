from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_serializer, model_validator

from spendtrackr.apps.approvals.schemas import ApprovalRead
from spendtrackr.apps.receipts.schemas import ReceiptRead
from spendtrackr.apps.spends.models import SpendStatus
from spendtrackr.core.currency import CurrencyCode, JsonDecimal, quantize
from spendtrackr.core.schemas import JsonDate, Schema, UpdateSchema, WriteSchema

MAX_AMOUNT = Decimal("1000000000000")  # 10^12 in any currency: beyond is a typo or an attack
PositiveAmount = Annotated[JsonDecimal, Field(gt=0, le=MAX_AMOUNT, examples=["123.45"])]
SpendDate = Annotated[JsonDate, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]
TaxAmount = Annotated[
    JsonDecimal,
    Field(ge=0, le=MAX_AMOUNT, description="The tax included in `amount`, in its currency"),
]
TaxRate = Annotated[
    JsonDecimal,
    Field(
        ge=0,
        le=100,
        decimal_places=4,
        description="The tax rate in percent; without `tax_amount`, the tax is worked out from "
        "it as included in `amount` (amount x rate / (100 + rate))",
        examples=["20"],
    ),
]
Description = Annotated[str, Field(max_length=1000)]


class PolicyResult(Schema):
    outcome: Literal["approved", "pending", "blocked"] | None = None
    matched_rules: list[dict[str, Any]] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    block_reason: str | None = None


class SpendRead(Schema):
    id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal
    currency: str
    base_amount: Decimal = Field(
        description="The amount in the company's base currency, fixed at submission: what "
        "policies, budgets, reports and the ledger use"
    )
    base_currency: str
    fx_rate: Decimal = Field(
        description="Units of the base currency per unit of `currency` (1 when the same)"
    )
    fx_date: date = Field(description="The day of the rate (the spend's date)")
    tax_amount: Decimal | None = Field(
        default=None, description="The tax included in `amount` (booked to the tax account)"
    )
    tax_rate: Decimal | None = None
    spend_date: date
    description: str
    source: Literal["manual", "card"]
    status: SpendStatus
    category_id: uuid.UUID | None
    vendor_id: uuid.UUID | None
    team_id: uuid.UUID | None
    card_id: uuid.UUID | None
    mcc: str | None = Field(default=None, description="A card purchase's merchant category code")
    refund_of: uuid.UUID | None = Field(
        default=None,
        description="A card refund: a credit (negative amount) for the purchase it names",
    )
    flags: list[str]
    policy_result: PolicyResult
    approvals: list[ApprovalRead] = Field(default_factory=list)
    receipts: list[ReceiptRead] = Field(default_factory=list)
    reimbursed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @field_serializer("amount")
    def _amount(self, amount: Decimal) -> str:
        return str(quantize(amount, self.currency))

    @field_serializer("base_amount")
    def _base_amount(self, amount: Decimal) -> str:
        return str(quantize(amount, self.base_currency))

    @field_serializer("fx_rate")
    def _fx_rate(self, rate: Decimal) -> str:
        return format(rate.normalize(), "f")

    @field_serializer("tax_amount")
    def _tax_amount(self, amount: Decimal | None) -> str | None:
        return None if amount is None else str(quantize(amount, self.currency))

    @field_serializer("tax_rate")
    def _tax_rate(self, rate: Decimal | None) -> str | None:
        return None if rate is None else format(rate.normalize(), "f")


def _round_amount(amount: Decimal | None, currency: str | None) -> Decimal | None:
    if amount is None or currency is None:
        return amount
    rounded = quantize(amount, currency)
    if rounded <= 0:
        raise ValueError(f"amount rounds to {rounded} {currency}; it must be more than zero")
    return rounded


class SpendCreate(WriteSchema):
    amount: PositiveAmount
    currency: CurrencyCode
    spend_date: SpendDate
    description: Description = ""
    source: Literal["manual"] = "manual"
    category_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    tax_amount: TaxAmount | None = None
    tax_rate: TaxRate | None = None

    @model_validator(mode="after")
    def _round(self) -> Self:
        self.amount = _round_amount(self.amount, self.currency) or self.amount
        return self


class SpendUpdate(UpdateSchema):
    nullable = frozenset({"category_id", "vendor_id", "team_id", "tax_amount", "tax_rate"})

    amount: PositiveAmount | None = None
    currency: CurrencyCode | None = None
    spend_date: SpendDate | None = None
    description: Description | None = None
    category_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    tax_amount: TaxAmount | None = None
    tax_rate: TaxRate | None = None


class SpendFilters(Schema):
    status: SpendStatus | None = None
    user_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    date_from: date | None = None
    date_to: date | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
