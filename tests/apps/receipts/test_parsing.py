"""The local extractor's reading of a receipt's text (a PDF's text layer or tesseract's output)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from spendtrackr.apps.receipts.parsing import parse_text


def test_total_tax_items_date_and_vendor() -> None:
    receipt = parse_text(
        "ACME CAFE\nDate: 2026-11-03\nCoffee 4.50\nBagel 3.87\nSubtotal 8.37\nTax 0.67\n"
        "TOTAL 9.04 USD\n"
    )
    assert receipt.vendor == "ACME CAFE"
    assert receipt.date == date(2026, 11, 3)
    assert (receipt.total, receipt.tax, receipt.currency) == (
        Decimal("9.04"),
        Decimal("0.67"),
        "USD",
    )
    assert [(i.description, i.amount) for i in receipt.line_items] == [
        ("Coffee", Decimal("4.50")),
        ("Bagel", Decimal("3.87")),
    ]


def test_prices_with_thousands_separators_stay_whole() -> None:
    receipt = parse_text("HOTEL GRAND\nRoom, 2 nights 1,234.50\nMinibar 12.00\nTOTAL $1,246.50\n")
    assert receipt.total == Decimal("1246.50")
    assert receipt.currency == "USD"
    assert [(i.description, i.amount) for i in receipt.line_items] == [
        ("Room, 2 nights", Decimal("1234.50")),
        ("Minibar", Decimal("12.00")),
    ]


def test_a_quantity_before_a_price_is_not_part_of_it() -> None:
    receipt = parse_text("LINEN SHOP\nTowels 3 100.00\nTotal 100.00\n")
    assert [(i.description, i.amount) for i in receipt.line_items] == [
        ("Towels 3", Decimal("100.00"))
    ]


def test_decimal_commas() -> None:
    receipt = parse_text("BÄCKEREI\n03.11.2026\nBrezel 2,50 €\nGesamt\nTotal 12,50 EUR\n")
    assert receipt.total == Decimal("12.50")
    assert receipt.currency == "EUR"
    assert receipt.date == date(2026, 11, 3)


def test_without_a_total_line_the_largest_amount_is_taken() -> None:
    assert parse_text("KIOSK\nGum 1.20\nWater 2.30\n").total == Decimal("2.30")


def test_an_amount_without_cents_reads_as_written() -> None:
    assert str(parse_text("PARKING\nTotal 450\n").total) == "450"
