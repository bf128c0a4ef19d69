"""Spends in other currencies: fixed in the company's base currency at submission, and compared,
added up and booked in it."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from spendtrackr.apps.spends.models import Spend
from tests.factories import (
    authorize,
    create_category,
    create_policy,
    create_user,
    issue_card,
    set_rates,
    signup,
    submit_spend,
    webhook_secret,
)

# One unit of each currency in USD, as a finance team would set them for the month.
USD_PER = {"EUR": "1.0812", "GBP": "1.2698", "JPY": "0.006423"}
MINOR = {"USD": Decimal("0.01"), "EUR": Decimal("0.01"), "GBP": Decimal("0.01"), "JPY": Decimal(1)}


def expected_base(amount: str, currency: str) -> Decimal:
    """The base amount worked out here, independently: amount x rate, rounded half up once."""
    with localcontext() as ctx:
        ctx.prec = 50
        exact = (
            Decimal(amount) * Decimal(USD_PER[currency]) if currency != "USD" else Decimal(amount)
        )
    return exact.quantize(MINOR["USD"], rounding=ROUND_HALF_UP)


def test_a_month_of_eur_gbp_and_jpy_spends_adds_up_in_the_base_currency(
    client: TestClient,
) -> None:
    admin = signup(client)
    travel, meals = (create_category(client, admin, name=n) for n in ("Travel", "Meals"))
    # Rates every Monday of the month: each day's spend takes the latest earlier one.
    mondays = ("2026-06-01", "2026-06-08", "2026-06-15", "2026-06-22", "2026-06-29")
    for day in mondays:
        set_rates(client, admin, day, **USD_PER)
    rng = random.Random(31)
    expected_groups: dict[str, Decimal] = defaultdict(Decimal)
    expected_items: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for _ in range(45):
        currency = rng.choice(["USD", "EUR", "GBP", "JPY"])
        amount = str(Decimal(rng.randint(100, 900_000)) / (1 if currency == "JPY" else 100))
        category = rng.choice([travel, meals])
        spend = submit_spend(
            client,
            admin,
            amount=amount,
            currency=currency,
            spend_date=f"2026-06-{rng.randint(1, 30):02d}",
            category_id=category["id"],
        )
        base = expected_base(amount, currency)
        assert spend["base_amount"] == str(base), (amount, currency, spend)
        assert spend["base_currency"] == "USD"
        assert Decimal(spend["fx_rate"]) * Decimal(amount) - base < Decimal("0.01")
        expected_groups[category["id"]] += base
        expected_items[(category["id"], currency)] += Decimal(amount)
    report = client.get("/reports/spend-summary?group_by=category", headers=admin.headers).json()
    assert report["base_currency"] == "USD"
    assert {g["key"]: Decimal(g["base_total"]) for g in report["groups"]} == expected_groups
    assert Decimal(report["base_total"]) == sum(expected_groups.values())
    # The per-currency totals stay, each in its own currency.
    assert {(i["key"], i["currency"]): Decimal(i["total"]) for i in report["items"]} == dict(
        expected_items
    )
    by_month = client.get("/reports/spend-summary?group_by=month", headers=admin.headers).json()
    assert [(g["key"], Decimal(g["base_total"])) for g in by_month["groups"]] == [
        ("2026-06", sum(expected_groups.values()))
    ]


def test_a_pair_without_a_direct_rate_is_crossed_through_the_euro(client: TestClient) -> None:
    admin = signup(client)
    set_rates(client, admin, "2026-06-01", base="EUR", USD="0.92", GBP="1.17")
    # No GBP->USD rate: one EUR buys 1/0.92 USD and 1/1.17 GBP.
    spend = submit_spend(client, admin, amount="100.00", currency="GBP", spend_date="2026-06-03")
    with localcontext() as ctx:
        ctx.prec = 34
        usd_per_eur = (Decimal(1) / Decimal("0.92")).quantize(Decimal("1e-10"))
        gbp_per_eur = (Decimal(1) / Decimal("1.17")).quantize(Decimal("1e-10"))
        rate = (usd_per_eur / gbp_per_eur).quantize(Decimal("1e-10"))
    assert spend["base_amount"] == str(
        (Decimal(100) * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
    )


def test_no_rate_is_a_422_and_writes_nothing(app: Any, client: TestClient) -> None:
    admin = signup(client)
    set_rates(client, admin, "2026-06-01", EUR="1.08")
    late = client.post(
        "/spends",
        json={"amount": "10.00", "currency": "EUR", "spend_date": "2026-06-20"},
        headers=admin.headers,
    )
    assert late.status_code == 422
    assert late.json()["code"] == "no_rate"
    unknown = client.post(
        "/spends",
        json={"amount": "10.00", "currency": "CHF", "spend_date": "2026-06-02"},
        headers=admin.headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "no_rate"
    with app.state.session_factory() as session:
        count = (
            select(func.count())
            .select_from(Spend)
            .where(Spend.company_id == UUID(admin.company_id))
        )
        assert session.scalar(count) == 0


def test_policies_compare_in_the_base_currency_and_still_see_the_currency(
    client: TestClient,
) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    set_rates(client, admin, "2026-06-01", EUR="1.0812", JPY="0.006423")
    create_policy(
        client,
        admin,
        [
            {
                "condition": {"amount_gt": 500},
                "action": {"type": "require_approval", "approver": "manager"},
                "priority": 10,
            },
            {
                "condition": {"currency_in": ["JPY"]},
                "action": {"type": "flag", "flag": "foreign_currency"},
                "priority": 20,
            },
        ],
    )
    # 480 EUR is 518.98 USD: over 500 in the base currency, under it in its own.
    eur = submit_spend(client, employee, amount="480.00", currency="EUR", spend_date="2026-06-02")
    assert eur["base_amount"] == "518.98"
    assert eur["status"] == "pending"
    # 70,000 JPY is 449.61 USD: a big number, a small amount.
    yen = submit_spend(client, employee, amount="70000", currency="JPY", spend_date="2026-06-02")
    assert (yen["base_amount"], yen["status"]) == ("449.61", "approved")
    assert yen["flags"] == ["foreign_currency"]
    # The dry run takes the same path.
    dry = client.post(
        "/policies/evaluate",
        json={"amount": "480.00", "currency": "EUR", "spend_date": "2026-06-02"},
        headers=admin.headers,
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["outcome"] == "pending"


def test_an_edit_prices_the_spend_again(client: TestClient) -> None:
    admin = signup(client)
    set_rates(client, admin, "2026-06-01", EUR="1.08")
    set_rates(client, admin, "2026-06-08", EUR="1.10")
    create_policy(
        client,
        admin,
        [
            {
                "condition": {"amount_gt": 1},
                "action": {"type": "require_approval", "approver": "role:finance"},
            }
        ],
    )
    spend = submit_spend(client, admin, amount="100.00", currency="EUR", spend_date="2026-06-02")
    assert (spend["base_amount"], spend["fx_rate"], spend["fx_date"]) == (
        "108.00",
        "1.08",
        "2026-06-02",
    )
    moved = client.patch(
        f"/spends/{spend['id']}", json={"spend_date": "2026-06-09"}, headers=admin.headers
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["base_amount"], moved.json()["fx_rate"]) == ("110.00", "1.1")
    in_usd = client.patch(f"/spends/{spend['id']}", json={"currency": "USD"}, headers=admin.headers)
    assert (in_usd.json()["base_amount"], in_usd.json()["fx_rate"]) == ("100.00", "1")


def test_the_base_currency_cannot_change_once_spends_are_measured_in_it(
    client: TestClient,
) -> None:
    admin = signup(client)
    renamed = client.patch("/companies/me", json={"base_currency": "EUR"}, headers=admin.headers)
    assert renamed.status_code == 200, renamed.text
    submit_spend(client, admin, amount="5.00", currency="EUR")
    again = client.patch("/companies/me", json={"base_currency": "USD"}, headers=admin.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "base_currency_in_use"
    same = client.patch("/companies/me", json={"base_currency": "EUR"}, headers=admin.headers)
    assert same.status_code == 200


def test_the_ledger_books_the_base_amount_with_the_original_beside_it(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    set_rates(client, admin, "2026-06-01", EUR="1.0812")
    travel = create_category(client, admin, name="Travel", gl_code="6100")
    spend = submit_spend(
        client,
        admin,
        amount="250.00",
        currency="EUR",
        spend_date="2026-06-03",
        category_id=travel["id"],
    )
    assert spend["status"] == "approved"
    journal = client.get("/exports/accounting.csv", headers=finance.headers)
    rows = list(csv.DictReader(io.StringIO(journal.text)))
    assert [(r["account"], r["debit"], r["credit"], r["currency"]) for r in rows] == [
        ("6100", "270.30", "0.00", "USD"),
        ("2000", "0.00", "270.30", "USD"),
    ]
    assert {(r["original_amount"], r["original_currency"], r["fx_rate"]) for r in rows} == {
        ("250.00", "EUR", "1.0812")
    }
    xero = client.get("/exports/accounting.csv?format=xero", headers=finance.headers)
    amounts = [r["*Amount"] for r in csv.DictReader(io.StringIO(xero.text))]
    assert amounts == ["270.30", "-270.30"]


def test_a_card_purchase_abroad_is_priced_at_what_the_card_was_billed(
    client: TestClient,
) -> None:
    admin = signup(client)
    holder = create_user(client, admin)
    card = issue_card(client, admin, holder, [{"amount": "100.00", "interval": "monthly"}])
    secret = webhook_secret(client, admin)
    # Without the billed amount, a purchase in another currency cannot be counted.
    bare = authorize(client, secret, card["id"], "50.00", currency="EUR")
    assert bare == {"approved": False, "decline_reason": "currency_mismatch", "spend_id": None}
    paid = authorize(client, secret, card["id"], "50.00", currency="EUR", billing_amount="54.37")
    assert paid["approved"] is True, paid
    spend = client.get(f"/spends/{paid['spend_id']}", headers=admin.headers).json()
    assert (spend["amount"], spend["currency"]) == ("50.00", "EUR")
    assert (spend["base_amount"], spend["fx_rate"]) == ("54.37", "1.0874")
    # The limit counts the billed amount: 54.37 + 45.64 > 100.
    over = authorize(client, secret, card["id"], "42.00", currency="EUR", billing_amount="45.64")
    assert over["decline_reason"] == "spending_limit_exceeded:monthly"
    fits = authorize(client, secret, card["id"], "45.63")
    assert fits["approved"] is True
    listed = client.get(f"/card-authorizations?card_id={card['id']}", headers=admin.headers)
    billed = {
        (a["amount"], a["currency"], a["billed_amount"], a["billed_currency"])
        for a in listed.json()["items"]
    }
    assert ("50.00", "EUR", "54.37", "USD") in billed
