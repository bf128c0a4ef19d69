from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import Field, field_serializer, model_validator

from spendtrackr.apps.payouts.models import AccountKind, LineStatus, PayoutMethod, PayoutStatus
from spendtrackr.core.currency import quantize
from spendtrackr.core.schemas import Schema, WriteSchema

HolderName = Annotated[str, Field(min_length=1, max_length=140)]
Digits = Annotated[str, Field(pattern=r"^[0-9]{4,17}$", description="4 to 17 digits")]
Routing = Annotated[str, Field(pattern=r"^[0-9]{9}$", description="The 9-digit ABA routing number")]


class BankAccountWrite(WriteSchema):
    """An IBAN (with its BIC, or one derived from the IBAN), or a US routing and account number."""

    holder_name: HolderName
    iban: Annotated[str, Field(max_length=42)] | None = None
    bic: Annotated[str, Field(max_length=11)] | None = None
    routing_number: Routing | None = None
    account_number: Digits | None = None
    account_type: Literal["checking", "savings"] = "checking"

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        us = self.routing_number is not None or self.account_number is not None
        if (self.iban is not None) == us:
            raise ValueError("give either iban (and bic) or routing_number and account_number")
        if us and (self.routing_number is None or self.account_number is None):
            raise ValueError("a US account needs routing_number and account_number")
        return self


class BankAccountRead(Schema):
    kind: AccountKind
    holder_name: str
    account: str = Field(description="Masked: only the last four characters are shown")
    country: str | None
    bic: str | None
    routing_number: str | None
    account_type: str | None
    updated_at: datetime


class SepaDebtor(WriteSchema):
    name: HolderName
    iban: Annotated[str, Field(max_length=42)]
    bic: Annotated[str, Field(max_length=11)] | None = None


class AchOriginator(WriteSchema):
    company_name: Annotated[str, Field(min_length=1, max_length=16)]
    company_id: Annotated[
        str, Field(pattern=r"^[0-9A-Z ]{10}$", description="The 10-character ACH company id")
    ]
    routing_number: Routing = Field(description="The originating bank's (ODFI) routing number")
    bank_name: Annotated[str, Field(min_length=1, max_length=23)]


class PayoutSettingsWrite(WriteSchema):
    sepa: SepaDebtor | None = None
    ach: AchOriginator | None = None


class PayoutSettingsRead(Schema):
    sepa: dict[str, str | None] | None
    ach: dict[str, str] | None


class PayoutCreate(WriteSchema):
    method: PayoutMethod = Field(
        description="`sepa`: a pain.001.001.09 credit transfer file (EUR); `nacha`: an ACH PPD "
        "credit file (USD)"
    )
    execution_date: date | None = Field(
        default=None, description="When the bank should pay (default: the next day)"
    )


class PayoutLineRead(Schema):
    id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal
    spend_ids: list[uuid.UUID]
    status: LineStatus
    return_reason: str | None
    currency: str = ""

    @field_serializer("amount")
    def _amount(self, value: Decimal) -> str:
        return str(quantize(value, self.currency or "USD"))


class Skipped(Schema):
    user_id: uuid.UUID
    reason: str = Field(description="`no_bank_account`: no account of the batch's kind")
    spend_count: int


class PayoutRead(Schema):
    id: uuid.UUID
    method: PayoutMethod
    status: PayoutStatus
    currency: str
    total: Decimal
    execution_date: date
    created_at: datetime
    paid_at: datetime | None
    lines: list[PayoutLineRead] = Field(default_factory=list)
    skipped: list[Skipped] = Field(
        default_factory=list, description="On creation: who could not be paid, and why"
    )
    file_url: str = ""

    @field_serializer("total")
    def _total(self, value: Decimal) -> str:
        return str(quantize(value, self.currency))


class LineReturn(WriteSchema):
    reason: Annotated[str, Field(min_length=1, max_length=200)]
