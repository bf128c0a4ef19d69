"""What the ledger's routes take and answer: the export and its marking, the company's accounts,
its closed periods."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import Field, StrictBool, computed_field

from spendtrackr.apps.ledger.models import ExportStatus
from spendtrackr.core.schemas import FilterDate, GLCode, Schema, WriteSchema


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
    kind: str = Field(
        description="approval | reimbursement | tax (tax read off a receipt after the booking)"
    )
    account: str
    debit: str
    credit: str
    currency: str = Field(description="The company's base currency")
    vendor: str
    description: str
    employee: str
    original_amount: str = Field(description="The spend's amount as entered")
    original_currency: str
    fx_rate: str
    department: str = Field(description="The spend's team's GL code, or empty")
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


class AccountingSettingsWrite(WriteSchema):
    """The company's accounts; one left out (or null) is the server's default."""

    expense_account: GLCode | None = Field(
        default=None, description="Debited for a spend whose category has no GL code"
    )
    card_liability_account: GLCode | None = Field(
        default=None, description="Credited for card spends (owed to the card issuer)"
    )
    employee_payable_account: GLCode | None = Field(
        default=None, description="Credited for out-of-pocket spends (owed to the employee)"
    )
    cash_account: GLCode | None = Field(
        default=None, description="Credited when an employee is reimbursed"
    )
    tax_account: GLCode | None = Field(
        default=None, description="Debited with the tax included in a spend (recoverable tax)"
    )


class AccountingSettingsRead(Schema):
    expense_account: str
    card_liability_account: str
    employee_payable_account: str
    cash_account: str
    tax_account: str
    defaults: list[str] = Field(
        description="The accounts that are the server's default (the company set no own)"
    )
    books_closed_through: dt.date | None = Field(
        description="Nothing dated on or before this day can be added or changed"
    )


class PeriodsRead(Schema):
    books_closed_through: dt.date | None
    first_open_day: dt.date | None = Field(
        description="Where entries for closed days are booked (null: nothing is closed)"
    )
