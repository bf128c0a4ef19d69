from __future__ import annotations

import csv
import io
import tracemalloc
import uuid
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert

from spendtrackr.apps.ledger import service as ledger_service
from spendtrackr.apps.ledger.models import LedgerLine
from tests.factories import (
    Actor,
    approval_over,
    create_category,
    create_policy,
    create_user,
    issue_card,
    signup,
    submit_spend,
    webhook_secret,
)


def export(client: TestClient, actor: Actor, query: str = "") -> list[dict[str, str]]:
    response = client.get(f"/exports/accounting.csv?{query}", headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_every_spend_path_posts_balanced_journals(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    travel = create_category(client, admin, name="Travel", gl_code="6100")
    # manual, approved at once, then reimbursed
    manual = submit_spend(
        client, employee, amount="120.50", category_id=travel["id"], description="Train"
    )
    client.post(f"/spends/{manual['id']}/reimburse", headers=finance.headers)
    # pending, then approved by finance
    create_policy(client, admin, [approval_over(500, "role:finance")])
    big = submit_spend(client, employee, amount="900")
    assert export(client, finance, "")
    assert not [r for r in export(client, finance) if r["spend_id"] == big["id"]]
    client.post(
        f"/approvals/{big['approvals'][0]['id']}/decision",
        json={"approved": True},
        headers=finance.headers,
    )
    # a card purchase
    card = issue_card(client, admin, employee)
    client.post(
        "/card-network/authorizations",
        json={
            "card_id": card["id"],
            "amount": "33.30",
            "currency": "USD",
            "merchant_name": "Uber",
            "authorization_id": "a1",
        },
        headers=webhook_secret(client, admin),
    )
    rows = export(client, finance)
    journals: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        journals[row["journal_id"]].append(row)
    assert len(journals) == 4
    for lines in journals.values():
        assert sum(Decimal(r["debit"]) for r in lines) == sum(Decimal(r["credit"]) for r in lines)
    by_spend = defaultdict(list)
    for row in rows:
        by_spend[row["spend_id"]].append((row["account"], row["debit"], row["credit"]))
    assert by_spend[manual["id"]] == [
        ("6100", "120.50", "0.00"),
        ("2000", "0.00", "120.50"),  # approval: expense / employee payable
        ("2000", "120.50", "0.00"),
        ("1000", "0.00", "120.50"),  # reimbursement: payable / cash
    ]
    assert by_spend[big["id"]] == [("6000", "900.00", "0.00"), ("2000", "0.00", "900.00")]
    card_rows = next(v for k, v in by_spend.items() if k not in (manual["id"], big["id"]))
    assert card_rows == [("6000", "33.30", "0.00"), ("2100", "0.00", "33.30")]  # card liability
    assert {r["employee"] for r in rows} == {"A employee"}
    assert list(rows[0]) == [
        "date",
        "journal_id",
        "spend_id",
        "account",
        "debit",
        "credit",
        "currency",
        "vendor",
        "description",
        "employee",
        "line_id",
        "original_amount",
        "original_currency",
        "fx_rate",
        "department",
    ]


def test_csv_quoting_and_formula_injection(client: TestClient) -> None:
    admin = signup(client)
    nasty = [
        '=HYPERLINK("http://evil")',
        "+1+1",
        "-2",
        "@SUM(A1)",
        'comma, "quote"\nnewline',
    ]
    for text in nasty:
        submit_spend(client, admin, amount="1", description=text)
    response = client.get("/exports/accounting.csv", headers=admin.headers)
    assert "\r\n" in response.text  # RFC 4180 line ends
    descriptions = {r["description"] for r in csv.DictReader(io.StringIO(response.text))}
    assert descriptions == {
        '\'=HYPERLINK("http://evil")',
        "'+1+1",
        "'-2",
        "'@SUM(A1)",
        'comma, "quote"\nnewline',
    }


def test_json_variant_date_range_and_mark_exported(client: TestClient) -> None:
    admin = signup(client)
    submit_spend(client, admin, amount="1", spend_date="2026-01-15")
    submit_spend(client, admin, amount="2", spend_date="2026-02-15")
    january = client.get(
        "/exports/accounting.csv?format=json&date_from=2026-01-01&date_to=2026-01-31",
        headers=admin.headers,
    ).json()
    assert [(i["date"], i["debit"], i["credit"]) for i in january["items"]] == [
        ("2026-01-15", "1.00", "0.00"),
        ("2026-01-15", "0.00", "1.00"),
    ]
    marked = client.post(
        "/exports/accounting/mark-exported",
        json={"date_from": "2026-01-01", "date_to": "2026-01-31"},
        headers=admin.headers,
    )
    assert marked.json() == {"status": "ok", "marked": 2}
    timestamp = client.post(
        "/exports/accounting/mark-exported", json={"date_to": 1769817600}, headers=admin.headers
    )
    assert timestamp.status_code == 422, timestamp.text  # 2026-01-31 as a Unix timestamp
    assert (
        client.post(
            "/exports/accounting/mark-exported",
            json={"date_to": "2026-01-31"},
            headers=admin.headers,
        ).json()["marked"]
        == 0
    )
    pending = client.get(
        "/exports/accounting.csv?format=json&only_unexported=true", headers=admin.headers
    ).json()["items"]
    assert {i["date"] for i in pending} == {"2026-02-15"}
    again = client.get("/exports/accounting.csv?format=json", headers=admin.headers).json()["items"]
    assert {i["id"] for i in again} >= {
        i["id"] for i in january["items"]
    }  # stable ids on re-export


def test_export_is_finance_only_and_per_company(client: TestClient) -> None:
    admin = signup(client)
    other = signup(client)
    submit_spend(client, admin)
    for role in ("employee", "manager"):
        actor = create_user(client, admin, role=role)
        assert client.get("/exports/accounting.csv", headers=actor.headers).status_code == 403
        assert (
            client.post(
                "/exports/accounting/mark-exported", json={}, headers=actor.headers
            ).status_code
            == 403
        )
    assert export(client, other) == []
    assert (
        client.get("/exports/accounting.csv?format=xml", headers=admin.headers).status_code == 422
    )


def test_export_streams_100k_lines_in_constant_memory(client: TestClient, app: FastAPI) -> None:
    admin = signup(client)
    spend = submit_spend(client, admin, amount="1")
    company_id, spend_id = uuid.UUID(admin.company_id), uuid.UUID(spend["id"])
    start = date(2020, 1, 1)
    with app.state.engine.begin() as conn:
        for chunk in range(10):
            rows: list[dict[str, Any]] = []
            for i in range(chunk * 5000, (chunk + 1) * 5000):
                journal = uuid.uuid4()
                for line_no, (debit, credit) in enumerate(
                    ((Decimal("1.00"), Decimal(0)), (Decimal(0), Decimal("1.00"))), start=1
                ):
                    rows.append(
                        {
                            "id": uuid.uuid4(),
                            "company_id": company_id,
                            "journal_id": journal,
                            "line_no": line_no,
                            "spend_id": spend_id,
                            "kind": "approval",
                            "entry_date": start + timedelta(days=i % 1000),
                            "account": "6000" if line_no == 1 else "2000",
                            "debit": debit,
                            "credit": credit,
                            "currency": "USD",
                            "original_amount": Decimal("1.00"),
                            "original_currency": "USD",
                            "fx_rate": Decimal(1),
                            "vendor": "",
                            "description": f"bulk {i}",
                            "employee": "x",
                        }
                    )
            conn.execute(insert(LedgerLine), rows)
    f = ledger_service.ExportFilter(
        company_id=company_id, date_from=start, date_to=start + timedelta(days=999)
    )
    tracemalloc.start()
    lines = 0
    size = 0
    for chunk_bytes in ledger_service.csv_stream(
        ledger_service.iter_lines(app.state.session_factory, f)
    ):
        size += len(chunk_bytes)
        lines += chunk_bytes.count(b"\r\n")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lines == 100_001  # header + every line
    assert size > 10_000_000
    # Holding the range would take well over 100 MB of rows; a batch at a time stays small.
    assert peak < 8_000_000, f"peak {peak} bytes for {size} bytes of CSV"
