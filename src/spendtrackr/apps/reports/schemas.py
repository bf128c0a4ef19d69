from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import field_serializer

from spendtrackr.apps.spends.models import SpendStatus
from spendtrackr.core.currency import quantize
from spendtrackr.core.schemas import Schema

GroupBy = Literal["category", "vendor", "user", "team", "month", "status"]


class SummaryItem(Schema):
    key: str | None
    label: str
    currency: str
    count: int
    total: Decimal

    @field_serializer("total")
    def _total(self, total: Decimal) -> str:
        return str(quantize(total, self.currency))


class SpendSummary(Schema):
    group_by: GroupBy
    items: list[SummaryItem]


__all__ = ["GroupBy", "SpendStatus", "SpendSummary", "SummaryItem"]  # SpendStatus: the filter
