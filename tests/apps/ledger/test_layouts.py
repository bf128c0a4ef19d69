"""Exports an accounting system imports without editing: each layout's columns as its import
documents them, dates as it reads them, and every journal balanced in its own terms."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal

from fastapi.testclient import TestClient

from tests.factories import create_user, signup, submit_spend

# The column sets the systems publish for their imports.
QBO = [
    "Journal No.",
    "Journal Date",
    "Account Name",
    "Description",
    "Debits",
    "Credits",
    "Name",
    "Class",
]
XERO = [
    "*Narration",
    "*Date",
    "Description",
    "*AccountCode",
    "*TaxRate",
    "*Amount",
    "TrackingName1",
    "TrackingOption1",
    "TrackingName2",
    "TrackingOption2",
]
NETSUITE = [
    "External ID",
    "Date",
    "Currency",
    "Memo",
    "Account",
    "Debit",
    "Credit",
    "Line Memo",
    "Name",
    "Department",
]


def rows(client: TestClient, headers: dict[str, str], layout: str) -> list[dict[str, str]]:
    response = client.get(f"/exports/accounting.csv?format={layout}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].endswith(f'accounting-{layout}.csv"')
    reader = csv.DictReader(io.StringIO(response.text))
    columns = {"qbo": QBO, "xero": XERO, "netsuite": NETSUITE}[layout]
    assert reader.fieldnames == columns
    return list(reader)


def test_quickbooks_xero_and_netsuite_layouts(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    submit_spend(client, employee, amount="123.45", spend_date="2026-11-20", description="Taxi")
    submit_spend(client, employee, amount="10.00", spend_date="2026-11-21", description="=SUM(A1)")

    qbo = rows(client, finance.headers, "qbo")
    assert len(qbo) == 4
    assert qbo[0]["Journal Date"] == "11/20/2026"
    journals: dict[str, Decimal] = defaultdict(Decimal)
    for row in qbo:
        assert bool(row["Debits"]) != bool(row["Credits"])  # one side a line, the other blank
        journals[row["Journal No."]] += Decimal(row["Debits"] or 0) - Decimal(row["Credits"] or 0)
        assert len(row["Journal No."]) <= 21
    assert set(journals.values()) == {Decimal(0)}
    assert {r["Description"] for r in qbo} == {"Taxi", "'=SUM(A1)"}  # no formula reaches a sheet

    xero = rows(client, finance.headers, "xero")
    assert xero[0]["*Date"] == "20/11/2026"
    assert {r["*TaxRate"] for r in xero} == {"Tax Exempt"}
    by_narration: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in xero:
        by_narration[(row["*Narration"], row["*Date"])] += Decimal(row["*Amount"])
    assert len(by_narration) == 2  # one Xero journal a SpendTrackr journal
    assert set(by_narration.values()) == {Decimal(0)}
    assert sorted(Decimal(r["*Amount"]) for r in xero)[0] == Decimal("-123.45")

    netsuite = rows(client, finance.headers, "netsuite")
    assert {r["Currency"] for r in netsuite} == {"USD"}
    assert len({r["External ID"] for r in netsuite}) == 2
    assert netsuite[0]["Date"] == "11/20/2026"

    as_json = client.get("/exports/accounting.json?format=xero", headers=finance.headers).json()
    assert list(as_json["items"][0]) == XERO
    journal = client.get("/exports/accounting.json", headers=finance.headers).json()
    assert {"id", "journal_id", "debit", "credit", "account"} <= set(journal["items"][0])
    legacy = client.get("/exports/accounting.csv?format=json", headers=finance.headers)
    assert legacy.headers["content-type"].startswith("application/json")
    bad = client.get("/exports/accounting.csv?format=sage", headers=finance.headers)
    assert bad.status_code == 422
