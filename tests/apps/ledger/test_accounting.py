"""Accounts per company, departments, tax and period close: the journals follow the company's own
accounts, a team's GL code is the department of its lines in every export, tax goes to the tax
account (entered, worked out from a rate, or read off the receipt later), and closed books refuse
every write dated in them while what must still be booked lands on the first open day."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Clock
from tests.factories import (
    Actor,
    approval_over,
    authorize,
    create_category,
    create_policy,
    create_team,
    create_user,
    issue_card,
    join_team,
    set_rates,
    signup,
    submit_spend,
    webhook_secret,
)
from tests.receipts import pdf_receipt


def journal(client: TestClient, actor: Actor, spend_id: str) -> list[tuple[str, str, str]]:
    rows = csv.DictReader(
        io.StringIO(client.get("/exports/accounting.csv", headers=actor.headers).text)
    )
    return [(r["account"], r["debit"], r["credit"]) for r in rows if r["spend_id"] == spend_id]


def lines_of(client: TestClient, actor: Actor, spend_id: str) -> list[dict[str, Any]]:
    body = client.get("/ledger-lines?limit=200", headers=actor.headers).json()
    return [line for line in body["items"] if line["spend_id"] == spend_id]


# --- accounts --------------------------------------------------------------------------------


def test_the_companys_accounts_replace_the_servers_defaults(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    shown = client.get("/accounting/settings", headers=finance.headers).json()
    assert shown == {
        "expense_account": "6000",
        "card_liability_account": "2100",
        "employee_payable_account": "2000",
        "cash_account": "1000",
        "tax_account": "2200",
        "defaults": [
            "expense_account",
            "card_liability_account",
            "employee_payable_account",
            "cash_account",
            "tax_account",
        ],
        "books_closed_through": None,
    }
    put = client.put(
        "/accounting/settings",
        json={
            "expense_account": "Expenses:Other",
            "employee_payable_account": "2010",
            "cash_account": "1010",
        },
        headers=finance.headers,
    )
    assert put.status_code == 200, put.text
    assert put.json()["defaults"] == ["card_liability_account", "tax_account"]

    spend = submit_spend(client, employee, "40.00")
    assert (
        client.post(f"/spends/{spend['id']}/reimburse", headers=finance.headers).status_code == 200
    )
    assert journal(client, finance, spend["id"]) == [
        ("Expenses:Other", "40.00", "0.00"),
        ("2010", "0.00", "40.00"),
        ("2010", "40.00", "0.00"),
        ("1010", "0.00", "40.00"),
    ]
    # Another company still books to the server's defaults.
    other = signup(client)
    theirs = submit_spend(client, other, "5.00")
    assert [a for a, _, _ in journal(client, other, theirs["id"])] == ["6000", "2000"]

    # A PUT replaces: what it leaves out goes back to the default.
    reset = client.put("/accounting/settings", json={}, headers=finance.headers).json()
    assert reset["expense_account"] == "6000"
    assert len(reset["defaults"]) == 5
    actions = [
        e["action"]
        for e in client.get("/audit-logs?limit=200", headers=admin.headers).json()["items"]
    ]
    assert actions.count("accounting.settings_updated") == 2


@pytest.mark.parametrize(
    "body",
    [
        {"cash_account": ""},
        {"cash_account": "=HYPERLINK(1)"},
        {"cash_account": "x" * 33},
        {"cash_account": 1000},
        {"bank_account": "1000"},
    ],
)
def test_bad_accounts_are_refused(client: TestClient, body: dict[str, Any]) -> None:
    admin = signup(client)
    response = client.put("/accounting/settings", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert client.get("/accounting/settings", headers=admin.headers).json()["cash_account"] == (
        "1000"
    )


def test_employees_and_managers_see_no_accounting(client: TestClient) -> None:
    admin = signup(client)
    for role in ("employee", "manager"):
        actor = create_user(client, admin, role=role)
        assert client.get("/accounting/settings", headers=actor.headers).status_code == 403
        assert client.put("/accounting/settings", json={}, headers=actor.headers).status_code == 403
        assert (
            client.post("/accounting/periods/2026-10/close", headers=actor.headers).status_code
            == 403
        )


# --- departments -------------------------------------------------------------------------------


def test_a_teams_gl_code_is_the_department_of_its_lines_in_every_layout(
    client: TestClient,
) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    response = client.post(
        "/teams", json={"name": "Sales", "gl_code": "D-200"}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    team = response.json()
    assert team["gl_code"] == "D-200"
    join_team(client, admin, team, employee)
    spend = submit_spend(client, employee, "25.00", team_id=team["id"])
    plain = submit_spend(client, employee, "7.00")

    assert {line["department"] for line in lines_of(client, admin, spend["id"])} == {"D-200"}
    assert {line["department"] for line in lines_of(client, admin, plain["id"])} == {""}

    def layout(name: str) -> list[dict[str, str]]:
        text = client.get(f"/exports/accounting.csv?format={name}", headers=admin.headers).text
        return list(csv.DictReader(io.StringIO(text)))

    assert sorted(r["Class"] for r in layout("qbo")) == ["", "", "D-200", "D-200"]
    xero = layout("xero")
    assert sorted((r["TrackingName1"], r["TrackingOption1"]) for r in xero) == [
        ("", ""),
        ("", ""),
        ("Department", "D-200"),
        ("Department", "D-200"),
    ]
    assert sorted(r["Department"] for r in layout("netsuite")) == ["", "", "D-200", "D-200"]

    renamed = client.patch(f"/teams/{team['id']}", json={"gl_code": None}, headers=admin.headers)
    assert renamed.json()["gl_code"] is None
    bad = client.patch(f"/teams/{team['id']}", json={"gl_code": "a b"}, headers=admin.headers)
    assert bad.status_code == 422


# --- tax -----------------------------------------------------------------------------------------


def test_tax_is_booked_to_the_tax_account(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    travel = create_category(client, admin, gl_code="6100")
    spend = submit_spend(client, employee, "120.00", tax_amount="20.00", category_id=travel["id"])
    assert (spend["tax_amount"], spend["tax_rate"]) == ("20.00", None)
    assert journal(client, admin, spend["id"]) == [
        ("6100", "100.00", "0.00"),
        ("2200", "20.00", "0.00"),
        ("2000", "0.00", "120.00"),
    ]
    from_rate = submit_spend(client, employee, "119.00", tax_rate="19")
    assert (from_rate["tax_amount"], from_rate["tax_rate"]) == ("19.00", "19")
    assert journal(client, admin, from_rate["id"])[1] == ("2200", "19.00", "0.00")


def test_tax_in_another_currency_is_booked_at_the_spends_rate(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    set_rates(client, admin, "2026-11-20", EUR="1.0874")
    spend = submit_spend(client, employee, "119.00", currency="EUR", tax_amount="19.00")
    assert spend["base_amount"] == "129.40"
    lines = lines_of(client, admin, spend["id"])
    assert [(x["account"], x["debit"], x["credit"]) for x in lines] == [
        ("6000", "108.74", "0.00"),
        ("2200", "20.66", "0.00"),  # 19.00 EUR x 1.0874
        ("2000", "0.00", "129.40"),
    ]
    assert {x["original_currency"] for x in lines} == {"EUR"}


@pytest.mark.parametrize(
    "fields",
    [
        {"tax_amount": "50.00"},
        {"tax_amount": "50.01"},
        {"tax_amount": "-1"},
        {"tax_rate": "101"},
        {"tax_rate": "-5"},
        {"tax_rate": "abc"},
    ],
)
def test_impossible_tax_is_refused(client: TestClient, fields: dict[str, Any]) -> None:
    admin = signup(client)
    response = client.post(
        "/spends",
        json={"amount": "50.00", "currency": "USD", "spend_date": "2026-11-20", **fields},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] in {"invalid_tax", "validation_error"}
    assert client.get("/spends", headers=admin.headers).json()["total"] == 0


def test_an_edit_works_the_tax_out_again_from_its_rate(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    create_policy(client, admin, [approval_over(10, approver="role:admin")])
    spend = submit_spend(client, employee, "110.00", tax_rate="10")
    assert spend["tax_amount"] == "10.00"
    edited = client.patch(
        f"/spends/{spend['id']}", json={"amount": "220.00"}, headers=employee.headers
    ).json()
    assert (edited["tax_amount"], edited["tax_rate"]) == ("20.00", "10")
    cleared = client.patch(
        f"/spends/{spend['id']}",
        json={"tax_rate": None, "tax_amount": None},
        headers=employee.headers,
    ).json()
    assert (cleared["tax_amount"], cleared["tax_rate"]) == (None, None)


def test_tax_read_off_a_receipt_moves_from_the_expense_once_booked(client: TestClient) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin, "8.37")  # approved and booked without tax
    response = client.post(
        "/receipts",
        files={"file": ("r.pdf", pdf_receipt(), "application/pdf")},
        data={"spend_id": spend["id"]},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    after = client.get(f"/spends/{spend['id']}", headers=admin.headers).json()
    assert after["tax_amount"] == "0.62"
    by_kind: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for line in lines_of(client, admin, spend["id"]):
        by_kind[line["kind"]].append((line["account"], line["debit"], line["credit"]))
    assert by_kind == {
        "approval": [("6000", "8.37", "0.00"), ("2000", "0.00", "8.37")],
        "tax": [("2200", "0.62", "0.00"), ("6000", "0.00", "0.62")],  # tax out of the expense
    }


# --- period close --------------------------------------------------------------------------------


def close(client: TestClient, actor: Actor, period: str) -> Any:
    return client.post(f"/accounting/periods/{period}/close", headers=actor.headers)


def test_closing_a_period_refuses_every_write_dated_in_it(client: TestClient, clock: Clock) -> None:
    clock.now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(100)])
    late = submit_spend(client, employee, "300.00", spend_date="2026-11-28")  # pending
    draft = submit_spend(client, employee, "200.00", spend_date="2026-11-10")  # pending
    december = submit_spend(client, employee, "150.00", spend_date="2026-12-01")  # pending
    booked = submit_spend(client, employee, "50.00", spend_date="2026-11-05")  # approved

    assert close(client, finance, "2026-12").json()["code"] == "period_not_ended"
    closed = close(client, finance, "2026-11")
    assert closed.status_code == 200, closed.text
    assert closed.json() == {
        "books_closed_through": "2026-11-30",
        "first_open_day": "2026-12-01",
    }
    assert close(client, finance, "2026-10").json()["books_closed_through"] == "2026-11-30"

    def refused(response: Any) -> None:
        assert (response.status_code, response.json()["code"]) == (409, "period_closed"), (
            response.text
        )

    body = {"amount": "10.00", "currency": "USD", "spend_date": "2026-11-30"}
    refused(client.post("/spends", json=body, headers=employee.headers))
    refused(
        client.post("/spends", json={**body, "spend_date": "2025-01-01"}, headers=employee.headers)
    )
    refused(
        client.patch(f"/spends/{draft['id']}", json={"description": "x"}, headers=employee.headers)
    )
    refused(
        client.patch(
            f"/spends/{draft['id']}", json={"spend_date": "2026-12-02"}, headers=employee.headers
        )
    )
    refused(
        client.patch(
            f"/spends/{december['id']}", json={"spend_date": "2026-11-30"}, headers=employee.headers
        )
    )
    refused(client.post(f"/spends/{draft['id']}/cancel", headers=employee.headers))
    # Nothing of those reached the books or the spends.
    assert (
        client.get(f"/spends/{draft['id']}", headers=employee.headers).json()["description"] == ""
    )
    assert client.get("/spends", headers=admin.headers).json()["total"] == 4

    # In open days, writes go on.
    assert (
        client.post(
            "/spends", json={**body, "spend_date": "2026-12-01"}, headers=employee.headers
        ).status_code
        == 201
    )
    moved = client.patch(
        f"/spends/{december['id']}", json={"spend_date": "2026-12-02"}, headers=employee.headers
    )
    assert moved.status_code == 200, moved.text

    # Approving a spend of the closed month books it on the first open day (a correction).
    step = late["approvals"][0]["id"]
    decided = client.post(
        f"/approvals/{step}/decision", json={"approved": True}, headers=manager.headers
    )
    assert decided.status_code == 200, decided.text
    assert {line["date"] for line in lines_of(client, finance, late["id"])} == {"2026-12-01"}
    assert {line["date"] for line in lines_of(client, finance, booked["id"])} == {"2026-11-05"}
    # So does reimbursing one.
    assert (
        client.post(f"/spends/{booked['id']}/reimburse", headers=finance.headers).status_code == 200
    )
    dates = sorted(line["date"] for line in lines_of(client, finance, booked["id"]))
    assert dates[:2] == ["2026-11-05", "2026-11-05"]  # its approval, before the close
    assert all(day > "2026-11-30" for day in dates[2:])  # its reimbursement, today
    # No ledger line is dated in the closed month after the close.
    every = client.get("/ledger-lines?limit=200", headers=finance.headers).json()["items"]
    assert {line["date"] for line in every if line["spend_id"] != booked["id"]} <= {"2026-12-01"}

    # A card purchase is the network's fact: approved, dated today, in the open books.
    secret = webhook_secret(client, admin)
    card = issue_card(client, admin, employee)
    assert authorize(client, secret, card["id"], "12.00")["approved"] is True

    actions = [
        e["action"]
        for e in client.get("/audit-logs?limit=200", headers=admin.headers).json()["items"]
    ]
    assert actions.count("accounting.period_closed") == 1


def test_reopening_is_for_admins_and_opens_the_later_months_too(
    client: TestClient, clock: Clock
) -> None:
    clock.now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    assert close(client, finance, "2026-11").status_code == 200
    assert (
        client.post("/accounting/periods/2026-10/reopen", headers=finance.headers).status_code
        == 403
    )
    reopened = client.post("/accounting/periods/2026-10/reopen", headers=admin.headers)
    assert reopened.json() == {"books_closed_through": "2026-09-30", "first_open_day": "2026-10-01"}
    assert submit_spend(client, admin, "5.00", spend_date="2026-10-15")["status"] == "approved"
    assert (
        client.get("/accounting/periods", headers=finance.headers).json()["books_closed_through"]
        == "2026-09-30"
    )


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "26-10", "2026-10-01", "x", "1999-12"])
def test_a_period_is_a_month(client: TestClient, period: str) -> None:
    admin = signup(client)
    response = close(client, admin, period)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_period")


def test_tax_is_not_learnt_for_a_spend_in_closed_books(client: TestClient, clock: Clock) -> None:
    clock.now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    admin = signup(client)
    spend = submit_spend(client, admin, "8.37", spend_date="2026-11-20")
    assert close(client, admin, "2026-11").status_code == 200
    response = client.post(
        "/receipts",
        files={"file": ("r.pdf", pdf_receipt(), "application/pdf")},
        data={"spend_id": spend["id"]},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    assert client.get(f"/spends/{spend['id']}", headers=admin.headers).json()["tax_amount"] is None
    assert len(journal(client, admin, spend["id"])) == 2


def test_journals_balance_with_tax_and_departments(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    team = create_team(client, admin)
    join_team(client, admin, team, employee)
    for amount, tax in (("10.00", "1.00"), ("33.33", "3.03"), ("0.05", "0.01")):
        submit_spend(client, employee, amount, tax_amount=tax, team_id=team["id"])
    rows = csv.DictReader(
        io.StringIO(client.get("/exports/accounting.csv", headers=admin.headers).text)
    )
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        sums[row["journal_id"]] += Decimal(row["debit"]) - Decimal(row["credit"])
    assert len(sums) == 3
    assert set(sums.values()) == {0}
