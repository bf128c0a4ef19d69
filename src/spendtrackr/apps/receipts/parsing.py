"""Reading a receipt's plain text (from a PDF text layer or OCR): total, date, currency, vendor.

Heuristics, deliberately conservative: a total is taken from a line that says so ("total",
"amount due", "balance due"), never from a subtotal or a tax line; failing that, the largest
amount on the page.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from spendtrackr.apps.receipts.schemas import ExtractedReceipt, LineItem
from spendtrackr.core.currency import MINOR_UNITS

_AMOUNT = re.compile(r"(?<![\d.,])(\d{1,3}(?:[,\s]\d{3})+|\d+)(?:[.,](\d{1,2}))?(?![\d])")
_TOTAL_LINE = re.compile(r"\b(grand\s+total|total\s+due|amount\s+due|balance\s+due|total)\b", re.I)
_NOT_TOTAL = re.compile(r"\b(sub\s*-?\s*total|tax|vat|gst|tip|discount|savings)\b", re.I)
# A line item's price ends its line: `4.50`, `$1,234.50`, `12,50`. Only a comma groups thousands
# here (a space could join a quantity to its price: `Towels 3 100.00`).
_PRICE_AT_END = re.compile(r"[$€£]?\s?(?:\d{1,3}(?:,\d{3})+|\d+)[.,]\d{2}\s*$")
_TAX_LINE = re.compile(r"\b(tax|vat|gst)\b", re.I)
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF"}
_ISO = re.compile(r"\b([A-Z]{3})\b")
_DATES: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), ("%Y-%m-%d",)),
    (re.compile(r"\b\d{2}/\d{2}/\d{4}\b"), ("%m/%d/%Y", "%d/%m/%Y")),
    (re.compile(r"\b\d{2}\.\d{2}\.\d{4}\b"), ("%d.%m.%Y",)),
    (re.compile(r"\b\d{1,2} [A-Z][a-z]{2,8} \d{4}\b"), ("%d %B %Y", "%d %b %Y")),
    (re.compile(r"\b[A-Z][a-z]{2,8} \d{1,2}, \d{4}\b"), ("%B %d, %Y", "%b %d, %Y")),
]


def _amounts(line: str) -> list[Decimal]:
    found = []
    for whole, cents in _AMOUNT.findall(line):
        digits = re.sub(r"[,\s]", "", whole)
        try:
            found.append(Decimal(f"{digits}.{cents}" if cents else digits))
        except InvalidOperation:
            continue
    return found


def _parse_date(text: str) -> date | None:
    for pattern, formats in _DATES:
        for match in pattern.finditer(text):
            for fmt in formats:
                try:
                    return datetime.strptime(match.group(0), fmt).date()  # noqa: DTZ007
                except ValueError:
                    continue
    return None


def _currency(text: str) -> str | None:
    for symbol, code in _SYMBOLS.items():
        if symbol in text:
            return code
    for match in _ISO.finditer(text):
        if match.group(1) in MINOR_UNITS:
            return match.group(1)
    return None


def parse_text(text: str) -> ExtractedReceipt:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    total: Decimal | None = None
    tax: Decimal | None = None
    for line in lines:
        if _TOTAL_LINE.search(line) and not _NOT_TOTAL.search(line):
            amounts = _amounts(line)
            if amounts:
                total = amounts[-1]
        elif _TAX_LINE.search(line) and tax is None:
            amounts = _amounts(line)
            if amounts:
                tax = amounts[-1]
    if total is None:
        every = [
            a for line in lines for a in _amounts(line) if not re.search(r"\d{4}-\d{2}-\d{2}", line)
        ]
        total = max(every) if every else None
    items = []
    for line in lines:
        price = _PRICE_AT_END.search(line)
        if price is None or _TOTAL_LINE.search(line) or _NOT_TOTAL.search(line):
            continue
        label = line[: price.start()].strip(" .:$€£-\t")
        if re.search(r"[A-Za-z]{2}", label):
            items.append(LineItem(description=label[:300], amount=_amounts(price.group(0))[-1]))
    vendor = next((line[:200] for line in lines if re.search(r"[A-Za-z]{3}", line)), None)
    return ExtractedReceipt(
        vendor=vendor,
        date=_parse_date(text),
        total=total,
        currency=_currency(text),
        tax=tax,
        line_items=items[:200],
    )
