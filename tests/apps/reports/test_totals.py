"""The daily totals behind the company-wide summary stay equal to grouping the spends themselves,
whatever happens to the spends."""

from __future__ import annotations

import random
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from typer.testing import CliRunner

from spendtrackr.apps.spends import service as spends_service
from spendtrackr.apps.spends.models import Spend, SpendStatus, SpendTotal
from spendtrackr.cli import app as cli
from tests.factories import (
    Actor,
    approval_over,
    create_category,
    create_policy,
    create_team,
    create_user,
    create_vendor,
    issue_card,
    join_team,
    set_rates,
    signup,
    webhook_secret,
)

GROUPINGS = ("category", "vendor", "team", "month", "status")


def _both(
    app: FastAPI,
    client: TestClient,
    admin: Actor,
    group_by: str,
    date_from: str | None = None,
    date_to: str | None = None,
    status: str | list[str] | None = None,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The API's summary (from the totals) and the spends grouped directly, side by side."""
    query = {"group_by": group_by, "date_from": date_from, "date_to": date_to, "status": status}
    statuses = [status] if isinstance(status, str) else status or []
    response = client.get(
        "/reports/spend-summary",
        params={k: v for k, v in query.items() if v is not None},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    served = sorted(
        (
            (i["key"], i["currency"], i["count"], Decimal(i["total"]))
            for i in response.json()["items"]
        ),
        key=str,
    )
    with app.state.session_factory() as session:
        rows = spends_service.summarize(
            session,
            company_id=uuid.UUID(admin.company_id),
            scope=spends_service.Scope(everything=True),
            group_by=group_by,
            date_from=None if date_from is None else date.fromisoformat(date_from),
            date_to=None if date_to is None else date.fromisoformat(date_to),
            statuses=frozenset(SpendStatus(s) for s in statuses),
            from_totals=False,
        )
    direct = sorted(((r.key, r.currency, r.count, r.total) for r in rows), key=str)
    return served, direct


def _assert_totals_match(app: FastAPI, client: TestClient, admin: Actor) -> None:
    for group_by in GROUPINGS:
        served, direct = _both(app, client, admin, group_by)
        assert served == direct, group_by
        assert served, group_by
    served, direct = _both(
        app, client, admin, "category", date_from="2026-03-05", date_to="2026-03-20"
    )
    assert served == direct
    for status in ("pending", "approved", "cancelled", ["approved", "reimbursed"]):
        served, direct = _both(app, client, admin, "vendor", status=status)
        assert served == direct, status


def test_totals_follow_every_kind_of_spend_change(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employees = [create_user(client, admin, manager_id=manager.id) for _ in range(3)]
    categories = [create_category(client, admin) for _ in range(3)]
    vendors = [create_vendor(client, admin) for _ in range(2)]
    teams = [create_team(client, admin) for _ in range(2)]
    for team in teams:
        for employee in employees:
            join_team(client, admin, team, employee)
    create_policy(client, admin, [approval_over(50)])
    for day in ("01", "07", "14", "21", "28"):
        set_rates(client, admin, f"2026-03-{day}", EUR="1.09", JPY="0.0068")
    rng = random.Random(2026)

    def some_fields() -> dict[str, Any]:
        currency = rng.choice(["USD", "USD", "EUR", "JPY"])
        amount = Decimal(rng.randint(1, 9000)) / (1 if currency == "JPY" else 100)
        fields: dict[str, Any] = {
            "amount": str(amount),
            "currency": currency,
            "spend_date": f"2026-03-{rng.randint(1, 28):02d}",
        }
        for name, choices in (("category_id", categories), ("vendor_id", vendors)):
            pick = rng.choice([*choices, None])
            if pick is not None:
                fields[name] = pick["id"]
        return fields

    pending: list[tuple[Actor, str]] = []
    approved: list[str] = []
    for _ in range(40):
        who = rng.choice(employees)
        response = client.post("/spends", json=some_fields(), headers=who.headers)
        assert response.status_code == 201, response.text
        spend = response.json()
        if spend["status"] == "pending":
            pending.append((who, spend["id"]))
        elif spend["status"] == "approved":
            approved.append(spend["id"])
    assert len(pending) >= 5
    assert len(approved) >= 5

    rng.shuffle(pending)
    for who, spend_id in pending[:4]:  # edits: every counted field, and clearing groups
        changes = {**some_fields(), "team_id": rng.choice(teams)["id"]}
        if rng.random() < 0.5:
            changes["category_id"] = None
        response = client.patch(f"/spends/{spend_id}", json=changes, headers=who.headers)
        assert response.status_code == 200, response.text
    for who, spend_id in pending[4:6]:
        response = client.post(f"/spends/{spend_id}/cancel", headers=who.headers)
        assert response.status_code == 200, response.text
    steps = client.get("/approvals?status=pending", headers=manager.headers).json()["items"]
    for step in steps[:4]:
        response = client.post(
            f"/approvals/{step['id']}/decision",
            json={"approved": rng.random() < 0.6},
            headers=manager.headers,
        )
        assert response.status_code == 200, response.text
    for spend_id in approved[:3]:
        response = client.post(f"/spends/{spend_id}/reimburse", headers=admin.headers)
        assert response.status_code == 200, response.text

    card = issue_card(client, admin, employees[0])
    secret = webhook_secret(client, admin)
    for amount in ("12.00", "70.00"):  # approved, and one that waits for review
        response = client.post(
            "/card-network/authorizations",
            json={
                "card_id": card["id"],
                "amount": amount,
                "currency": "USD",
                "merchant_name": "Delta Air Lines",
                "authorization_id": f"auth_{uuid.uuid4().hex}",
            },
            headers=secret,
        )
        assert response.status_code == 200, response.text

    _assert_totals_match(app, client, admin)


def _ten_on_march_10(client: TestClient) -> tuple[Actor, uuid.UUID]:
    admin = signup(client)
    response = client.post(
        "/spends",
        json={"amount": "10.00", "currency": "USD", "spend_date": "2026-03-10"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return admin, uuid.UUID(response.json()["id"])


def test_a_savepoint_counts_only_once_released(app: FastAPI, client: TestClient) -> None:
    admin, spend_id = _ten_on_march_10(client)
    with app.state.session_factory() as session:
        spend = session.get(Spend, spend_id)
        assert spend is not None
        savepoint = session.begin_nested()
        spend.amount = Decimal("999.00")
        session.flush()
        savepoint.rollback()
        with session.begin_nested():
            spend.spend_date = date.fromisoformat("2026-03-11")
        session.commit()
    _assert_only_day(app, client, admin, "2026-03-11", "10.00")


def _assert_only_day(app: FastAPI, client: TestClient, admin: Actor, day: str, total: str) -> None:
    served, direct = _both(app, client, admin, "status", date_from=day, date_to=day)
    assert served == direct == [("approved", "USD", 1, Decimal(total))]
    served, direct = _both(app, client, admin, "month")
    assert served == direct


def test_a_rolled_back_transaction_leaves_the_totals_alone(
    app: FastAPI, client: TestClient
) -> None:
    admin, spend_id = _ten_on_march_10(client)
    with app.state.session_factory() as session:
        spend = session.get(Spend, spend_id)
        assert spend is not None
        spend.amount = Decimal("999.00")
        session.flush()
        session.rollback()
        session.get(Spend, spend_id)  # the session goes on: its next commit writes nothing stale
        session.commit()
    _assert_only_day(app, client, admin, "2026-03-10", "10.00")


def test_rebuild_totals_from_the_spends(cli_env: None, app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    vendor = create_vendor(client, admin)
    for amount, day in (("10.00", "2026-03-10"), ("2.50", "2026-03-10"), ("7.25", "2026-04-01")):
        client.post(
            "/spends",
            json={
                "amount": amount,
                "currency": "USD",
                "spend_date": day,
                "vendor_id": vendor["id"],
            },
            headers=admin.headers,
        )
    company_id = uuid.UUID(admin.company_id)
    with app.state.session_factory() as session:
        session.execute(delete(SpendTotal).where(SpendTotal.company_id == company_id))
        session.commit()
    served, direct = _both(app, client, admin, "vendor")
    assert served == []
    assert direct != []

    result = CliRunner().invoke(cli, ["rebuild-totals", "--company", admin.company_id])
    assert result.exit_code == 0, result.output
    assert "rebuilt 8 total rows" in result.output  # 2 days x (company, category, vendor, team)
    _assert_totals_match_everywhere(app, client, admin)
    with app.state.session_factory() as session:
        vendors = set(
            session.scalars(
                select(SpendTotal.group_id).where(
                    SpendTotal.company_id == company_id, SpendTotal.dimension == "vendor"
                )
            )
        )
    assert vendors == {uuid.UUID(vendor["id"])}

    bad = CliRunner().invoke(cli, ["rebuild-totals", "--company", "not-a-uuid"])
    assert bad.exit_code == 2
    assert "not a company id" in bad.output


def _assert_totals_match_everywhere(app: FastAPI, client: TestClient, admin: Actor) -> None:
    for group_by in GROUPINGS:
        served, direct = _both(app, client, admin, group_by)
        assert served == direct, group_by
