from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from spendtrackr.apps.receipts.models import MatchStatus, OcrStatus
from spendtrackr.core.currency import CurrencyCode
from spendtrackr.core.schemas import Schema, WriteSchema

ReceiptAmount = Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), max_digits=18, decimal_places=4)]


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Annotated[str, Field(max_length=300)]
    amount: ReceiptAmount | None = None


class ExtractedReceipt(BaseModel):
    """What an extractor read. Untrusted: every field is validated before it is stored."""

    model_config = ConfigDict(extra="forbid")

    vendor: Annotated[str, Field(max_length=200)] | None = None
    date: Annotated[dt.date, Field(ge=dt.date(2000, 1, 1), le=dt.date(2100, 12, 31))] | None = None
    total: ReceiptAmount | None = None
    currency: CurrencyCode | None = None
    tax: ReceiptAmount | None = None
    line_items: Annotated[list[LineItem], Field(max_length=200)] = Field(default_factory=list)
    confidence: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)


class ReceiptRead(Schema):
    id: uuid.UUID
    spend_id: uuid.UUID | None = Field(
        description="Null while a receipt uploaded alone is unmatched"
    )
    content_type: str
    size: int
    sha256: str
    ocr_status: OcrStatus
    ocr_error: str | None
    extracted: dict[str, Any] | None
    verified: bool | None
    match_status: MatchStatus | None = Field(
        default=None,
        description="Uploaded without a spend: `matched`, `unmatched` or `ambiguous` (then "
        "`candidates` lists the card spends that fit, best first)",
    )
    candidates: list[uuid.UUID] = Field(default_factory=list)
    created_at: dt.datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def file_url(self) -> str:
        return f"/receipts/{self.id}/file"


class MatchRequest(WriteSchema):
    spend_id: uuid.UUID
