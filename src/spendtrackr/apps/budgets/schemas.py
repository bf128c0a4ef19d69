from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import Field, field_serializer, model_validator

from spendtrackr.apps.budgets.models import BudgetMode, BudgetPeriod
from spendtrackr.core.currency import JsonDecimal, quantize
from spendtrackr.core.schemas import JsonDate, Name, Schema, UpdateSchema, WriteSchema

MAX_AMOUNT = Decimal("1000000000000")
BudgetAmount = Annotated[JsonDecimal, Field(gt=0, le=MAX_AMOUNT, examples=["5000.00"])]
BudgetDate = Annotated[JsonDate, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]


class BudgetCreate(WriteSchema):
    name: Name
    team_id: uuid.UUID | None = Field(default=None, description="Only this team's spends")
    category_id: uuid.UUID | None = Field(default=None, description="Only this category's spends")
    period: BudgetPeriod = Field(
        description="Calendar `monthly`, `quarterly` or `yearly` periods, or one `custom` range "
        "from `starts_on` to `ends_on`"
    )
    starts_on: BudgetDate | None = None
    ends_on: BudgetDate | None = None
    amount: BudgetAmount = Field(description="Per period, in the company's base currency")
    mode: BudgetMode = Field(
        description="`hard`: a spend that would take the budget past its amount is blocked and a "
        "card purchase declined (`budget_exceeded`); `soft`: it is flagged `over_budget`"
    )
    is_active: bool = True

    @model_validator(mode="after")
    def _range(self) -> Self:
        check_range(self.period, self.starts_on, self.ends_on)
        return self


def check_range(period: BudgetPeriod, starts_on: date | None, ends_on: date | None) -> None:
    if period == BudgetPeriod.custom:
        if starts_on is None or ends_on is None:
            raise ValueError("a custom period needs starts_on and ends_on")
        if ends_on < starts_on:
            raise ValueError("ends_on must not be before starts_on")
    elif starts_on is not None or ends_on is not None:
        raise ValueError("starts_on and ends_on belong to a custom period only")


class BudgetUpdate(UpdateSchema):
    nullable = frozenset({"team_id", "category_id", "starts_on", "ends_on"})

    name: Name | None = None
    team_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = None
    period: BudgetPeriod | None = None
    starts_on: BudgetDate | None = None
    ends_on: BudgetDate | None = None
    amount: BudgetAmount | None = None
    mode: BudgetMode | None = None
    is_active: bool | None = None


class BudgetRead(Schema):
    id: uuid.UUID
    name: str
    team_id: uuid.UUID | None
    category_id: uuid.UUID | None
    period: BudgetPeriod
    starts_on: date | None
    ends_on: date | None
    amount: Decimal
    currency: str
    mode: BudgetMode
    is_active: bool
    created_at: datetime
    updated_at: datetime
    # The period asked about (`?date=`, else today in the company's time zone).
    period_start: date | None = Field(
        default=None, description="The period holding the date asked about (null: none does)"
    )
    period_end: date | None = None
    spent_approved: Decimal = Field(
        default=Decimal(0), description="Approved and reimbursed spends in the period"
    )
    spent_pending: Decimal = Field(default=Decimal(0), description="Spends awaiting approval")
    remaining: Decimal = Field(
        default=Decimal(0), description="amount - approved - pending (negative when over)"
    )
    forecast: Decimal = Field(
        default=Decimal(0),
        description="What the period will have used at its end at the pace so far (approved + "
        "pending per elapsed day, times the period's days)",
    )

    @field_serializer("amount", "spent_approved", "spent_pending", "remaining", "forecast")
    def _money(self, amount: Decimal) -> str:
        return str(quantize(amount, self.currency))
