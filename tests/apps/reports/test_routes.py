from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    create_category,
    create_team,
    create_user,
    create_vendor,
    join_team,
    set_rates,
    signup,
    submit_spend,
)


def summary(client: TestClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    response = client.get(f"/reports/spend-summary?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_exact_totals_per_group_and_currency(client: TestClient) -> None:
    admin = signup(client)
    set_rates(client, admin, "2026-05-10", EUR="1.0812", JPY="0.006423")
    categories = [create_category(client, admin, name=n) for n in ("Travel", "Meals", "Software")]
    rng = random.Random(7)
    expected: dict[tuple[str | None, str], list[Decimal]] = defaultdict(list)
    for _ in range(60):
        category = rng.choice([*categories, None])
        currency = rng.choice(["USD", "EUR", "JPY"])
        amount = Decimal(rng.randint(1, 99999)) / (1 if currency == "JPY" else 100)
        fields = {"category_id": category["id"]} if category else {}
        response = client.post(
            "/spends",
            json={
                "amount": str(amount),
                "currency": currency,
                "spend_date": "2026-05-10",
                **fields,
            },
            headers=admin.headers,
        )
        assert response.status_code == 201
        expected[(category["id"] if category else None, currency)].append(amount)
    items = summary(client, admin.headers, "group_by=category")
    got = {(i["key"], i["currency"]): (i["count"], Decimal(i["total"])) for i in items}
    assert got == {k: (len(v), sum(v, Decimal(0))) for k, v in expected.items()}
    labels = {i["key"]: i["label"] for i in items}
    assert labels[categories[0]["id"]] == "Travel"
    assert labels[None] == "Uncategorized"
    # JPY totals have no decimals, others two
    assert all("." not in i["total"] for i in items if i["currency"] == "JPY")


def test_group_by_every_dimension(client: TestClient) -> None:
    admin = signup(client)
    vendor = create_vendor(client, admin, name="Delta")
    team = create_team(client, admin, name="Sales")
    employee = create_user(client, admin)
    join_team(client, admin, team, admin)
    submit_spend(client, admin, amount="10", vendor_id=vendor["id"], team_id=team["id"])
    submit_spend(client, employee, amount="5")
    assert {
        (i["label"], i["total"]) for i in summary(client, admin.headers, "group_by=vendor")
    } == {("Delta", "10.00"), ("No vendor", "5.00")}
    assert {(i["label"], i["count"]) for i in summary(client, admin.headers, "group_by=team")} == {
        ("Sales", 1),
        ("No team", 1),
    }
    assert {i["label"] for i in summary(client, admin.headers, "group_by=user")} == {
        "Ada Admin",
        "A employee",
    }
    assert [
        (i["key"], i["label"], i["count"])
        for i in summary(client, admin.headers, "group_by=status")
    ] == [("approved", "approved", 2)]


def test_months_across_a_year_boundary(client: TestClient) -> None:
    admin = signup(client)
    for day, amount in (
        ("2025-12-31", "1.00"),
        ("2026-01-01", "2.00"),
        ("2026-01-31", "3.00"),
        ("2025-12-01", "4.00"),
    ):
        submit_spend(client, admin, amount=amount, spend_date=day)
    items = summary(client, admin.headers, "group_by=month")
    assert [(i["key"], i["label"], i["count"], i["total"]) for i in items] == [
        ("2025-12", "2025-12", 2, "5.00"),
        ("2026-01", "2026-01", 2, "5.00"),
    ]
    ranged = summary(
        client, admin.headers, "group_by=month&date_from=2026-01-01&date_to=2026-01-30"
    )
    assert [(i["key"], i["total"]) for i in ranged] == [("2026-01", "2.00")]


def test_manager_sees_only_their_teams(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    report = create_user(client, admin, manager_id=manager.id)
    member = create_user(client, admin)
    team = create_team(client, admin, manager_id=manager.id)
    client.post(f"/teams/{team['id']}/members", json={"user_id": member.id}, headers=admin.headers)
    stranger = create_user(client, admin)
    submit_spend(client, report, amount="7")
    submit_spend(client, member, amount="3")
    submit_spend(client, stranger, amount="100")
    assert [
        (i["count"], i["total"]) for i in summary(client, manager.headers, "group_by=status")
    ] == [(2, "10.00")]
    assert [
        (i["count"], i["total"]) for i in summary(client, admin.headers, "group_by=status")
    ] == [(3, "110.00")]
    assert (
        client.get("/reports/spend-summary?group_by=status", headers=stranger.headers).status_code
        == 403
    )


@pytest.mark.parametrize(
    "query",
    [
        "group_by=planet",
        "",
        "group_by=month&date_from=2026-02-01&date_to=2026-01-01",
        "group_by=status&status=paid",
    ],
)
def test_bad_report_queries_are_422(client: TestClient, query: str) -> None:
    admin = signup(client)
    assert client.get(f"/reports/spend-summary?{query}", headers=admin.headers).status_code == 422


def test_reports_are_per_company(client: TestClient) -> None:
    admin = signup(client)
    other = signup(client)
    submit_spend(client, admin, amount="9")
    assert summary(client, other.headers, "group_by=status") == []
