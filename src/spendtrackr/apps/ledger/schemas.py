"""What the accounting export's marking takes and answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field

from spendtrackr.core.schemas import FilterDate, Schema, WriteSchema


class MarkExported(WriteSchema):
    date_from: FilterDate | None = None
    date_to: FilterDate | None = None
    line_ids: Annotated[list[uuid.UUID], Field(max_length=10000)] | None = None


class Marked(Schema):
    status: str = "ok"
    marked: int


class LedgerLineRead(Schema):
    """A journal line as the accounting export writes it."""

    id: uuid.UUID
    date: dt.date
    journal_id: uuid.UUID
    spend_id: uuid.UUID
    kind: str = Field(description="approval | reimbursement")
    account: str
    debit: str
    credit: str
    currency: str
    vendor: str
    description: str
    employee: str
    exported_at: dt.datetime | None
