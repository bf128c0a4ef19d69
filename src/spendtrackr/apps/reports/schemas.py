from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_serializer

from spendtrackr.apps.spends.models import SpendStatus
from spendtrackr.core.currency import quantize
from spendtrackr.core.schemas import Schema

GroupBy = Literal["category", "vendor", "user", "team", "month", "status"]


class SummaryItem(Schema):
    """One group's spends in one currency."""

    key: str | None
    label: str
    currency: str
    count: int
    total: Decimal = Field(description="In `currency`, as entered")
    base_total: Decimal = Field(description="The same spends in the base currency")
    base_currency: str

    @field_serializer("total")
    def _total(self, total: Decimal) -> str:
        return str(quantize(total, self.currency))

    @field_serializer("base_total")
    def _base_total(self, total: Decimal) -> str:
        return str(quantize(total, self.base_currency))


class SummaryGroup(Schema):
    """One group, every currency together in the base currency."""

    key: str | None
    label: str
    count: int
    base_total: Decimal
    base_currency: str

    @field_serializer("base_total")
    def _base_total(self, total: Decimal) -> str:
        return str(quantize(total, self.base_currency))


class SpendSummary(Schema):
    group_by: GroupBy
    base_currency: str
    base_total: Decimal = Field(description="Every group, in the base currency")
    items: list[SummaryItem] = Field(description="Per group and currency")
    groups: list[SummaryGroup] = Field(description="Per group, in the base currency")

    @field_serializer("base_total")
    def _base_total(self, total: Decimal) -> str:
        return str(quantize(total, self.base_currency))


__all__ = [
    "GroupBy",
    "SpendStatus",
    "SpendSummary",
    "SummaryGroup",
    "SummaryItem",
]  # SpendStatus: the filter
