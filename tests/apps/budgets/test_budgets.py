"""Budgets: CRUD and validation, periods, what a budget has used (approved and pending apart),
hard and soft budgets deciding spends and card purchases, the policy conditions on budgets, and
exactness under concurrent submissions."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete

from spendtrackr.apps.budgets.flows import forecast
from spendtrackr.apps.budgets.models import Budget, BudgetPeriod
from spendtrackr.apps.budgets.service import period_of
from spendtrackr.apps.spends.models import SpendTotal
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


def make_budget(client: TestClient, admin: Actor, **fields: Any) -> dict[str, Any]:
    body = {"name": "Travel", "period": "monthly", "amount": "1000.00", "mode": "hard", **fields}
    response = client.post("/budgets", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def budget(client: TestClient, admin: Actor, budget_id: str, on: str = "2026-11-20") -> Any:
    response = client.get(f"/budgets/{budget_id}?date={on}", headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- periods and forecast ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        ("monthly", date(2026, 2, 14), (date(2026, 2, 1), date(2026, 2, 28))),
        ("monthly", date(2028, 2, 29), (date(2028, 2, 1), date(2028, 2, 29))),
        ("quarterly", date(2026, 1, 1), (date(2026, 1, 1), date(2026, 3, 31))),
        ("quarterly", date(2026, 6, 30), (date(2026, 4, 1), date(2026, 6, 30))),
        ("quarterly", date(2026, 11, 5), (date(2026, 10, 1), date(2026, 12, 31))),
        ("yearly", date(2026, 7, 4), (date(2026, 1, 1), date(2026, 12, 31))),
    ],
)
def test_calendar_periods(period: str, day: date, expected: tuple[date, date]) -> None:
    assert period_of(Budget(period=BudgetPeriod(period)), day) == expected


def test_a_custom_range_covers_its_days_only() -> None:
    b = Budget(period=BudgetPeriod.custom, starts_on=date(2026, 3, 10), ends_on=date(2026, 4, 9))
    assert period_of(b, date(2026, 3, 10)) == (date(2026, 3, 10), date(2026, 4, 9))
    assert period_of(b, date(2026, 4, 9)) == (date(2026, 3, 10), date(2026, 4, 9))
    assert period_of(b, date(2026, 3, 9)) is None
    assert period_of(b, date(2026, 4, 10)) is None


def test_forecast_is_the_pace_so_far_over_the_period() -> None:
    start, end = date(2026, 11, 1), date(2026, 11, 30)
    assert forecast(Decimal("300"), start, end, date(2026, 11, 10)) == Decimal("900")
    assert forecast(Decimal("300"), start, end, date(2026, 11, 30)) == Decimal("300")
    assert forecast(Decimal("300"), start, end, date(2026, 12, 5)) == Decimal("300")


# --- managing budgets --------------------------------------------------------------------------


def test_finance_creates_reads_updates_and_deletes_a_budget(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    team = create_team(client, admin)
    created = make_budget(client, finance, team_id=team["id"], amount="2500.555")
    assert created["currency"] == "USD"
    assert created["amount"] == "2500.56"  # in the base currency's minor units
    assert created["team_id"] == team["id"]

    shown = budget(client, finance, created["id"])
    assert shown["period_start"] == "2026-11-01"
    assert shown["period_end"] == "2026-11-30"
    assert shown["spent_approved"] == shown["spent_pending"] == "0.00"
    assert shown["remaining"] == "2500.56"

    listed = client.get("/budgets", headers=finance.headers).json()
    assert [b["id"] for b in listed["items"]] == [created["id"]]

    patched = client.patch(
        f"/budgets/{created['id']}",
        json={"amount": "3000", "mode": "soft"},
        headers=finance.headers,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["amount"], patched.json()["mode"]) == ("3000.00", "soft")

    deleted = client.delete(f"/budgets/{created['id']}", headers=finance.headers)
    assert deleted.status_code == 200
    assert client.get(f"/budgets/{created['id']}", headers=finance.headers).status_code == 404

    actions = [
        e["action"]
        for e in client.get(f"/audit-logs?entity_id={created['id']}", headers=admin.headers).json()[
            "items"
        ]
    ]
    assert sorted(actions) == ["budget.created", "budget.deleted", "budget.updated"]


def test_only_finance_and_admins_manage_budgets(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    body = {"name": "X", "period": "monthly", "amount": "10", "mode": "soft"}
    assert client.post("/budgets", json=body, headers=manager.headers).status_code == 403
    assert client.get("/budgets", headers=manager.headers).status_code == 403


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"period": "custom"}, "validation_error"),
        (
            {"period": "custom", "starts_on": "2026-05-01", "ends_on": "2026-04-01"},
            "validation_error",
        ),
        ({"starts_on": "2026-05-01"}, "validation_error"),
        ({"amount": "0"}, "validation_error"),
        ({"amount": "-5"}, "validation_error"),
        ({"amount": "0.001"}, "invalid_amount"),
        ({"mode": "strict"}, "validation_error"),
        ({"period": "weekly"}, "validation_error"),
        ({"team_id": "00000000-0000-0000-0000-000000000001"}, "invalid_team"),
        ({"category_id": "00000000-0000-0000-0000-000000000001"}, "invalid_category"),
        ({"surprise": 1}, "validation_error"),
    ],
)
def test_bad_budgets_are_refused_with_a_reason(
    client: TestClient, fields: dict[str, Any], code: str
) -> None:
    admin = signup(client)
    body = {"name": "B", "period": "monthly", "amount": "100", "mode": "hard", **fields}
    response = client.post("/budgets", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert client.get("/budgets", headers=admin.headers).json()["total"] == 0


def test_another_companys_team_and_budget_are_not_reachable(client: TestClient) -> None:
    mine, theirs = signup(client), signup(client)
    their_team = create_team(client, theirs)
    their_budget = make_budget(client, theirs)
    response = client.post(
        "/budgets",
        json={
            "name": "B",
            "period": "monthly",
            "amount": "1",
            "mode": "hard",
            "team_id": their_team["id"],
        },
        headers=mine.headers,
    )
    assert response.json()["code"] == "invalid_team"
    for method in ("GET", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"amount": "5"}} if method == "PATCH" else {}
        answer = client.request(
            method, f"/budgets/{their_budget['id']}", headers=mine.headers, **kwargs
        )
        assert answer.status_code == 404


def test_a_patch_to_a_custom_period_needs_its_range(client: TestClient) -> None:
    admin = signup(client)
    created = make_budget(client, admin)
    bad = client.patch(
        f"/budgets/{created['id']}", json={"period": "custom"}, headers=admin.headers
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_period")
    good = client.patch(
        f"/budgets/{created['id']}",
        json={"period": "custom", "starts_on": "2026-11-15", "ends_on": "2026-12-15"},
        headers=admin.headers,
    )
    assert good.status_code == 200, good.text
    back = client.patch(
        f"/budgets/{created['id']}", json={"period": "yearly"}, headers=admin.headers
    )
    assert (back.json()["starts_on"], back.json()["ends_on"]) == (None, None)


def test_the_base_currency_stays_while_budgets_exist(client: TestClient) -> None:
    admin = signup(client)
    make_budget(client, admin)
    response = client.patch("/companies/me", json={"base_currency": "EUR"}, headers=admin.headers)
    assert (response.status_code, response.json()["code"]) == (409, "base_currency_in_use")


# --- what a budget has used ----------------------------------------------------------------


def test_used_counts_pending_and_approved_apart_in_the_base_currency(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    travel = create_category(client, admin)
    other = create_category(client, admin)
    create_policy(client, admin, [approval_over(100)])
    set_rates(client, admin, "2026-11-20", EUR="1.10")
    company = make_budget(client, admin, name="All", amount="10000", mode="soft")
    by_travel = make_budget(client, admin, category_id=travel["id"], amount="1000")

    submit_spend(client, employee, "50.00", category_id=travel["id"])  # approved
    submit_spend(client, employee, "200.00", currency="EUR", category_id=travel["id"])  # pending
    submit_spend(client, employee, "30.00", category_id=other["id"])  # approved, other category
    submit_spend(client, employee, "70.00", category_id=travel["id"], spend_date="2026-10-31")
    rejected = submit_spend(client, employee, "120.00", category_id=travel["id"])
    step = rejected["approvals"][0]["id"]
    assert (
        client.post(
            f"/approvals/{step}/decision",
            json={"approved": False, "comment": "no"},
            headers=manager.headers,
        ).status_code
        == 200
    )

    travel_now = budget(client, admin, by_travel["id"])
    assert travel_now["spent_approved"] == "50.00"
    assert travel_now["spent_pending"] == "220.00"  # 200 EUR at 1.10
    assert travel_now["remaining"] == "730.00"
    assert travel_now["forecast"] == str((Decimal("270") * 30 / 20).quantize(Decimal("0.01")))
    whole = budget(client, admin, company["id"])
    assert (whole["spent_approved"], whole["spent_pending"]) == ("80.00", "220.00")
    october = budget(client, admin, by_travel["id"], on="2026-10-05")
    assert (october["period_start"], october["spent_approved"]) == ("2026-10-01", "70.00")


def test_a_company_budget_adds_up_the_companys_own_daily_rows(
    client: TestClient, app: FastAPI
) -> None:
    """A company-wide budget reads the totals' `company` dimension (a day's few rows), not every
    category's: with the category rows gone from the database it still counts every spend, and
    once the company rows are gone too it counts none."""
    admin = signup(client)
    employee = create_user(client, admin)
    categories = [create_category(client, admin) for _ in range(3)]
    whole = make_budget(client, admin, name="All", amount="10000", mode="soft")
    for n, category in enumerate(categories, start=1):
        submit_spend(client, employee, f"{10 * n}.00", category_id=category["id"])
    submit_spend(client, employee, "5.00")  # no category

    def drop(dimension: str) -> None:
        with app.state.session_factory() as session:
            session.execute(
                delete(SpendTotal).where(
                    SpendTotal.company_id == uuid.UUID(admin.company_id),
                    SpendTotal.dimension == dimension,
                )
            )
            session.commit()

    drop("category")
    assert budget(client, admin, whole["id"])["spent_approved"] == "65.00"
    drop("company")
    assert budget(client, admin, whole["id"])["spent_approved"] == "0.00"


def test_a_team_and_category_budget_counts_spends_of_both(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    team = create_team(client, admin)
    join_team(client, admin, team, employee)
    travel = create_category(client, admin)
    both = make_budget(
        client, admin, team_id=team["id"], category_id=travel["id"], amount="100", mode="hard"
    )
    submit_spend(client, employee, "60.00", team_id=team["id"], category_id=travel["id"])
    submit_spend(client, employee, "60.00", category_id=travel["id"])  # no team: not counted
    submit_spend(client, employee, "60.00", team_id=team["id"])  # no category: not counted
    assert budget(client, admin, both["id"])["spent_approved"] == "60.00"
    over = submit_spend(client, employee, "40.01", team_id=team["id"], category_id=travel["id"])
    assert over["status"] == "blocked"
    fits = submit_spend(client, employee, "40.00", team_id=team["id"], category_id=travel["id"])
    assert fits["status"] == "approved"


# --- deciding spends -----------------------------------------------------------------------------


def test_a_hard_budget_blocks_and_a_soft_one_flags(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    hard_cat, soft_cat = create_category(client, admin), create_category(client, admin)
    make_budget(client, admin, name="Hard", category_id=hard_cat["id"], amount="100")
    make_budget(client, admin, name="Soft", category_id=soft_cat["id"], amount="100", mode="soft")

    assert submit_spend(client, employee, "100.00", category_id=hard_cat["id"])["status"] == (
        "approved"
    )  # exactly at the amount
    blocked = submit_spend(client, employee, "0.01", category_id=hard_cat["id"])
    assert blocked["status"] == "blocked"
    assert blocked["policy_result"]["block_reason"] == "Over the hard budget 'Hard'"
    assert "over_budget" in blocked["flags"]

    submit_spend(client, employee, "90.00", category_id=soft_cat["id"])
    flagged = submit_spend(client, employee, "20.00", category_id=soft_cat["id"])
    assert flagged["status"] == "approved"
    assert "over_budget" in flagged["flags"]
    # Blocked spends do not count: the hard budget still has nothing left, not less.
    hard_id = client.get(
        f"/budgets?category_id={hard_cat['id']}&date=2026-11-20", headers=admin.headers
    ).json()
    assert hard_id["items"][0]["remaining"] == "0.00"


def test_budgets_of_another_period_or_inactive_do_not_decide(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    make_budget(
        client,
        admin,
        name="Dec",
        period="custom",
        starts_on="2026-12-01",
        ends_on="2026-12-31",
        amount="1",
    )
    make_budget(client, admin, name="Off", amount="1", is_active=False)
    assert submit_spend(client, employee, "500.00")["status"] == "approved"


def test_an_edit_is_measured_without_the_spends_own_old_amount(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    create_policy(client, admin, [approval_over(10, approver="role:admin")])
    make_budget(client, admin, amount="100")
    spend = submit_spend(client, employee, "80.00")
    assert spend["status"] == "pending"
    # 80 -> 95: the budget holds 95, not 80 + 95.
    edited = client.patch(
        f"/spends/{spend['id']}", json={"amount": "95.00"}, headers=employee.headers
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["status"] == "pending"
    over = client.patch(
        f"/spends/{spend['id']}", json={"amount": "100.01"}, headers=employee.headers
    )
    assert over.json()["status"] == "blocked"


def test_policies_route_on_budget_conditions(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    finance = create_user(client, admin, role="finance")
    create_policy(
        client,
        admin,
        [
            {
                "condition": {"budget_exceeded": True},
                "action": {"type": "require_approval", "approver": "role:finance"},
            },
            {
                "condition": {"budget_remaining_lt": 100, "budget_exceeded": False},
                "action": {"type": "flag", "flag": "budget_running_low"},
            },
        ],
    )
    make_budget(client, admin, amount="500", mode="soft")
    roomy = submit_spend(client, employee, "100.00")
    assert (roomy["status"], roomy["flags"]) == ("approved", [])
    low = submit_spend(client, employee, "350.00")  # 50 left
    assert (low["status"], low["flags"]) == ("approved", ["budget_running_low"])
    over = submit_spend(client, employee, "60.00")
    assert over["status"] == "pending"
    assert over["policy_result"]["approvers"] == ["role:finance"]
    assert "over_budget" in over["flags"]
    assert (
        client.post(
            f"/approvals/{over['approvals'][0]['id']}/decision",
            json={"approved": True},
            headers=finance.headers,
        ).status_code
        == 200
    )

    # The dry run answers the same question without writing anything.
    dry = client.post(
        "/policies/evaluate",
        json={"amount": "1", "currency": "USD", "spend_date": "2026-11-20"},
        headers=admin.headers,
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["approvers"] == ["role:finance"]


def test_a_card_purchase_past_a_hard_budget_is_declined(client: TestClient) -> None:
    admin = signup(client)
    holder = create_user(client, admin)
    secret = webhook_secret(client, admin)
    card = issue_card(client, admin, holder)
    make_budget(client, admin, period="yearly", amount="100")
    assert authorize(client, secret, card["id"], "70.00")["approved"] is True
    declined = authorize(client, secret, card["id"], "30.01")
    assert declined == {"approved": False, "decline_reason": "budget_exceeded", "spend_id": None}
    assert authorize(client, secret, card["id"], "30.00")["approved"] is True


def test_a_deleted_category_with_a_budget_is_in_use(client: TestClient) -> None:
    admin = signup(client)
    travel = create_category(client, admin)
    make_budget(client, admin, category_id=travel["id"])
    response = client.delete(f"/categories/{travel['id']}", headers=admin.headers)
    assert (response.status_code, response.json()["code"]) == (409, "in_use")


# --- concurrency ---------------------------------------------------------------------------------


def test_forty_concurrent_submissions_fill_a_hard_budget_exactly(
    client: TestClient, live_server: str
) -> None:
    admin = signup(client)
    employees = [create_user(client, admin) for _ in range(4)]
    make_budget(client, admin, amount="50.00")

    def attempt(i: int) -> str:
        actor = employees[i % len(employees)]
        with httpx.Client(base_url=live_server, timeout=60) as http:
            response = http.post(
                "/spends",
                json={"amount": "5.00", "currency": "USD", "spend_date": "2026-11-20"},
                headers=actor.headers,
            )
            assert response.status_code == 201, response.text
            return str(response.json()["status"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(attempt, range(40)))
    assert statuses.count("approved") == 10
    assert statuses.count("blocked") == 30
    listed = client.get("/budgets?date=2026-11-20", headers=admin.headers).json()["items"][0]
    assert (listed["spent_approved"], listed["remaining"]) == ("50.00", "0.00")
