"""The index a page of spends and the duplicate check name on MySQL/MariaDB, where the optimizer's
own choice was slow (other databases plan as they will)."""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.apps.spends.models import SpendStatus
from spendtrackr.apps.spends.schemas import SpendFilters
from spendtrackr.apps.spends.service import Scope, _page_index
from tests.factories import create_category, create_user, signup, submit_spend
from tests.statements import statements_sent

ONE, TWO, TEAM = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
TODAY = date(2026, 12, 5)


def dated(date_from: str, date_to: str, **more: Any) -> SpendFilters:
    return SpendFilters(
        date_from=date.fromisoformat(date_from), date_to=date.fromisoformat(date_to), **more
    )


@pytest.mark.parametrize(
    ("scope", "filters", "index"),
    [
        (Scope(everything=True), SpendFilters(), "ix_spend_company_created"),
        (Scope(user_ids=frozenset({ONE})), SpendFilters(), "ix_spend_company_user_created"),
        (Scope(everything=True), SpendFilters(user_id=ONE), "ix_spend_company_user_created"),
        (
            Scope(user_ids=frozenset({ONE, TWO})),
            SpendFilters(user_id=TWO),
            "ix_spend_company_user_created",
        ),
        # One person's, whatever else narrows it but dates.
        (
            Scope(user_ids=frozenset({ONE})),
            SpendFilters(status=SpendStatus.pending),
            "ix_spend_company_user_created",
        ),
        (
            Scope(everything=True),
            SpendFilters(user_id=ONE, category_id=TWO, min_amount=Decimal(100)),
            "ix_spend_company_user_created",
        ),
        # A manager's people and teams, everyone's narrowed, dates: left to the optimizer.
        (Scope(user_ids=frozenset({ONE, TWO})), SpendFilters(), None),
        (Scope(user_ids=frozenset({ONE}), team_ids=frozenset({TEAM})), SpendFilters(), None),
        (Scope(everything=True), SpendFilters(status=SpendStatus.pending), None),
        (Scope(user_ids=frozenset({ONE})), SpendFilters(date_from=date(2026, 1, 1)), None),
        (Scope(everything=True), SpendFilters(user_id=ONE, date_to=date(2026, 1, 1)), None),
        # Everyone's over a range of dates: through (company, date) unless the range ends
        # within a tenth of its length of today; then the newest spends reach it first.
        (Scope(everything=True), dated("2025-06-01", "2025-06-30"), "ix_spend_company_date"),
        (
            Scope(everything=True),
            dated("2025-06-01", "2025-06-30", status=SpendStatus.approved),
            "ix_spend_company_date",
        ),
        (Scope(everything=True), dated("2025-01-01", "2025-12-31"), "ix_spend_company_date"),
        (Scope(everything=True), dated("2026-11-10", "2026-11-30"), "ix_spend_company_date"),
        (Scope(everything=True), dated("2026-11-01", "2026-12-04"), None),
        (Scope(everything=True), dated("2026-01-01", "2026-12-05"), None),
        (Scope(everything=True), dated("2026-12-05", "2026-12-05"), None),
        (Scope(everything=True), dated("2026-12-01", "2026-12-31"), None),
        (Scope(everything=True), SpendFilters(date_from=date(2025, 6, 1)), None),
        (Scope(everything=True), SpendFilters(date_to=date(2025, 6, 1)), None),
        (Scope(user_ids=frozenset({ONE, TWO})), dated("2025-06-01", "2025-06-30"), None),
        (
            Scope(everything=True),
            dated("2025-06-01", "2025-06-30", user_id=ONE),
            None,
        ),
    ],
)
def test_a_page_names_the_index_that_answers_it_in_order(
    scope: Scope, filters: SpendFilters, index: str | None
) -> None:
    assert _page_index(scope, filters, TODAY) == index


def spend_reads() -> AbstractContextManager[list[str]]:
    """The SELECTs from `spend` sent meanwhile."""
    return statements_sent(
        lambda statement: (
            statement.lstrip().upper().startswith("SELECT") and "FROM spend" in statement
        )
    )


def hints(statements: list[str]) -> list[str]:
    return [s.split("FORCE INDEX (", 1)[1].split(")", 1)[0] for s in statements if "FORCE" in s]


def test_the_statements_sent_name_their_index(client: TestClient, app: FastAPI) -> None:
    if app.state.engine.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("index hints are MySQL's and MariaDB's")
    admin = signup(client)
    employee = create_user(client, admin)
    category = create_category(client, admin)
    with spend_reads() as sent:
        submit_spend(client, employee, amount="10.00", category_id=category["id"])
    assert hints(sent) == ["ix_spend_company_user_date"]  # the duplicate check
    submit_spend(client, admin, amount="20.00")
    with spend_reads() as sent:
        own = client.get("/spends", headers=employee.headers).json()
    assert [s["amount"] for s in own["items"]] == ["10.00"]
    assert own["total"] == 1
    # The count and the page both go through it.
    assert set(hints(sent)) == {"ix_spend_company_user_created"}
    with spend_reads() as sent:
        everyone = client.get("/spends", headers=admin.headers).json()
    assert [s["amount"] for s in everyone["items"]] == ["20.00", "10.00"]
    assert set(hints(sent)) == {"ix_spend_company_created"}
    with spend_reads() as sent:
        pending = client.get("/spends?status=pending", headers=admin.headers).json()
    assert pending["total"] == 0
    assert hints(sent) == []
    with spend_reads() as sent:
        approved = client.get("/spends?status=approved", headers=employee.headers).json()
    assert [s["amount"] for s in approved["items"]] == ["10.00"]
    assert set(hints(sent)) == {"ix_spend_company_user_created"}
    with spend_reads() as sent:
        synced = client.get("/spends?updated_since=2020-01-01T00:00:00Z", headers=admin.headers)
    assert synced.status_code == 200  # (the spends just made wait until they settle)
    assert hints(sent) == ["ix_spend_company_updated"]  # a cursor page: the keyset's own


def test_a_page_of_old_dates_chooses_its_spends_before_reading_them(
    client: TestClient, app: FastAPI
) -> None:
    """Everyone's spends over a range long past: the page's ids are chosen through the dates'
    index (which holds the creation time the page is ordered by), then only those spends are
    read, still newest first, the pages adding up to the whole range."""
    admin = signup(client)
    for day, amount in enumerate(["1.00", "2.00", "3.00", "4.00", "5.00"], start=1):
        submit_spend(client, admin, amount=amount, spend_date=f"2025-06-0{day}")
    submit_spend(client, admin, amount="9.00", spend_date="2025-08-01")  # after the range
    submit_spend(client, admin, amount="8.00", spend_date="2025-05-31")  # before it
    seen: list[str] = []
    totals = set()
    with spend_reads() as sent:
        for offset in (0, 2, 4):
            page = client.get(
                f"/spends?date_from=2025-06-01&date_to=2025-06-30&limit=2&offset={offset}",
                headers=admin.headers,
            ).json()
            seen += [s["amount"] for s in page["items"]]
            totals.add(page["total"])
    assert seen == ["5.00", "4.00", "3.00", "2.00", "1.00"]
    assert totals == {5}
    if app.state.engine.dialect.name in ("mysql", "mariadb"):
        rows = [s for s in sent if "JOIN (SELECT spend.id" in s]
        assert len(rows) == 3  # each page's rows, by the ids chosen first
        assert all(hints([s]) == ["ix_spend_company_date"] for s in rows)


def test_a_submission_reads_its_company_and_category_in_one_statement(
    client: TestClient, app: FastAPI
) -> None:
    """The company (under its shared lock) and the category the spend names come in one
    statement, and nothing reads the category again: not the reference check, not the ledger's
    posting of the approved spend to the category's account."""
    admin = signup(client)
    employee = create_user(client, admin)
    category = create_category(client, admin, gl_code="6123")
    with statements_sent(
        lambda statement: (
            statement.lstrip().upper().startswith("SELECT")
            and ("FROM category" in statement or "JOIN category" in statement)
        )
    ) as sent:
        spend = submit_spend(client, employee, amount="10.00", category_id=category["id"])
    assert spend["status"] == "approved"
    assert len(sent) == 1
    assert "FROM company LEFT OUTER JOIN category" in sent[0]
    if app.state.engine.dialect.name in ("mysql", "mariadb"):
        assert sent[0].rstrip().endswith("LOCK IN SHARE MODE")
    lines = client.get("/ledger-lines", headers=admin.headers).json()["items"]
    # Posted to the category's account, from the row read once.
    assert {line["account"] for line in lines if line["debit"] != "0.00"} == {"6123"}
