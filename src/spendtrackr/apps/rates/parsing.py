"""Rate files an operator downloads: the ECB's euro reference rates (`eurofxref-hist.csv`:
`Date,USD,JPY,...` with one row per day, `N/A` where a currency had none, units per 1 EUR),
and a plain `date,currency,rate` CSV (units of `currency` per 1 unit of a base given apart)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation


class RateFileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ParsedRate:
    rate_date: date
    base: str
    quote: str
    rate: Decimal


def _rate(text: str, where: str) -> Decimal | None:
    text = text.strip()
    if not text or text.upper() == "N/A":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RateFileError(f"{where}: {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise RateFileError(f"{where}: a rate must be a positive number, not {text!r}")
    return value


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise RateFileError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


def _currency(text: str, where: str) -> str:
    code = text.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise RateFileError(f"{where}: {text!r} is not a currency code")
    return code


def parse(lines: Iterable[str], *, base: str = "EUR") -> Iterator[ParsedRate]:
    """The rates of a file in either format (told apart by its header)."""
    rows = csv.reader(lines)
    header = [h.strip() for h in next(rows, [])]
    if not header:
        raise RateFileError("the file is empty")
    if [h.lower() for h in header[:3]] == ["date", "currency", "rate"]:
        for number, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue
            where = f"line {number}"
            if len(row) < 3:
                raise RateFileError(f"{where}: expected date,currency,rate")
            value = _rate(row[2], where)
            if value is not None:
                yield ParsedRate(_date(row[0], where), base, _currency(row[1], where), value)
        return
    if header[0].lower() != "date":
        raise RateFileError(
            "not a rate file: the header must be the ECB's (Date,USD,JPY,...) or date,currency,rate"
        )
    quotes = [""] + [
        _currency(h, f"header column {i + 2}") if h else "" for i, h in enumerate(header[1:])
    ]
    for number, row in enumerate(rows, start=2):
        if not row or not row[0].strip():
            continue
        where = f"line {number}"
        day = _date(row[0], where)
        for column, cell in enumerate(row[1:], start=1):
            if column >= len(quotes) or not quotes[column]:
                continue
            value = _rate(cell, f"{where}, {quotes[column]}")
            if value is not None:
                yield ParsedRate(day, "EUR", quotes[column], value)
