"""Schema bases: reads render from ORM objects; writes refuse unknown fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Self

from fastapi import Depends, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    model_validator,
)

from spendtrackr.core.errors import ValidationFailed


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WriteSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UpdateSchema(WriteSchema):
    """PATCH bodies: every field optional, applied with `exclude_unset`. Only the fields named in
    `nullable` may be sent as null (to clear them); a null anywhere else is a 422."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent; an empty PATCH is refused."""
        changes = {name: getattr(self, name) for name in self.model_fields_set}
        if not changes:
            raise ValidationFailed("Nothing to update", code="empty_update")
        return changes


class StatusOk(Schema):
    status: str = "ok"


class Message(Schema):
    message: str


class ErrorBody(Schema):
    detail: str
    code: str


class ValidationIssue(Schema):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(Schema):
    detail: list[ValidationIssue]
    code: str


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# An account code or name of the general ledger (a category's, a team's, the company's accounts).
GLCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:-]+$"
    ),
]


def _date_text(value: object) -> object:
    if isinstance(value, int | float):  # bool too
        raise ValueError("a date is written as a string, YYYY-MM-DD")
    return value


# A date in a JSON body: the string YYYY-MM-DD. Pydantic would also take a number, as a Unix
# timestamp (1699920000 is 2023-11-14), where a client sending one has made a mistake.
JsonDate = Annotated[date, BeforeValidator(_date_text)]
Password = Annotated[str, StringConstraints(min_length=12, max_length=1024)]


def check_date_range(date_from: date | None, date_to: date | None) -> None:
    """A range that ends before it starts is a 422 (`invalid_range`), not an empty answer."""
    if date_from and date_to and date_from > date_to:
        raise ValidationFailed("date_from is after date_to", code="invalid_range")


# The first day MySQL's DATE holds: a filter may name any date, and an earlier one finds what
# this one finds (nothing is stored before it), without a literal the database refuses.
EARLIEST_DATE = date(1000, 1, 1)


def _clamped(day: date | None) -> date | None:
    return None if day is None else max(day, EARLIEST_DATE)


# A date that filters (never one that is stored): any calendar date is accepted.
FilterDate = Annotated[JsonDate, AfterValidator(_clamped)]


@dataclass(frozen=True, slots=True)
class DateRange:
    """A `date_from`..`date_to` filter, both days included, both optional."""

    date_from: date | None = None
    date_to: date | None = None

    def starts_at(self) -> datetime | None:
        """The first instant of `date_from` (UTC), for timestamp columns."""
        if self.date_from is None:
            return None
        return datetime(self.date_from.year, self.date_from.month, self.date_from.day, tzinfo=UTC)

    def ends_before(self) -> datetime | None:
        """The first instant after `date_to` (UTC); none when that is past the last day a
        timestamp can hold (9999-12-31 bounds nothing)."""
        if self.date_to is None or self.date_to == date.max:
            return None
        after = self.date_to + timedelta(days=1)
        return datetime(after.year, after.month, after.day, tzinfo=UTC)


def date_range(
    date_from: Annotated[date | None, Query(description="From this day on (included)")] = None,
    date_to: Annotated[date | None, Query(description="Up to this day (included)")] = None,
) -> DateRange:
    """The query's date range: checked (`invalid_range`), and valid for any calendar dates."""
    check_date_range(date_from, date_to)
    return DateRange(_clamped(date_from), _clamped(date_to))


DateRangeDep = Annotated[DateRange, Depends(date_range)]


def check_amount_range(min_amount: Decimal | None, max_amount: Decimal | None) -> None:
    """The same for amounts: a minimum above the maximum is a 422 (`invalid_range`)."""
    if min_amount is not None and max_amount is not None and min_amount > max_amount:
        raise ValidationFailed("min_amount is more than max_amount", code="invalid_range")
