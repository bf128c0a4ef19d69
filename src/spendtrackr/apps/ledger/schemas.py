"""What the accounting export's marking takes and answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import Field, StrictBool, computed_field

from spendtrackr.apps.ledger.models import ExportStatus
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


class ExportCreate(WriteSchema):
    format: Literal["csv", "json"] = "csv"
    date_from: FilterDate | None = None
    date_to: FilterDate | None = None
    only_unexported: StrictBool = False


class ExportRead(Schema):
    id: uuid.UUID
    status: ExportStatus = Field(description="pending -> running -> ready (or failed)")
    format: str
    date_from: dt.date | None
    date_to: dt.date | None
    only_unexported: bool
    line_count: int | None
    size: int | None = Field(description="Bytes, once ready")
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def file_url(self) -> str | None:
        return f"/exports/{self.id}/file" if self.status is ExportStatus.ready else None
