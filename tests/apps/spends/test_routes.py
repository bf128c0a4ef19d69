from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    Actor,
    approval_over,
    authorize,
    create_category,
    create_policy,
    create_team,
    create_user,
    create_vendor,
    issue_card,
    join_team,
    set_rates,
    signup,
    submit_spend,
    webhook_secret,
)
from tests.receipts import image_receipt, pdf_receipt


def test_submit_without_policies_is_approved_with_exact_money(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    spend = submit_spend(client, employee, amount="123.45", description="Taxi")
    assert spend["status"] == "approved"
    assert spend["amount"] == "123.45"
    assert spend["user_id"] == employee.id
    assert spend["source"] == "manual"
    assert spend["policy_result"]["outcome"] == "approved"
    assert spend["approvals"] == []
    assert spend["flags"] == []


@pytest.mark.parametrize(
    ("amount", "currency", "stored"),
    [
        (0.1 + 0.2, "USD", "0.30"),
        ("10.005", "USD", "10.01"),
        ("1999.4", "JPY", "1999"),
        ("1.23456", "KWD", "1.235"),
        (12, "eur", "12.00"),
    ],
)
def test_amounts_are_rounded_to_the_currency_minor_unit(
    client: TestClient, amount: Any, currency: str, stored: str
) -> None:
    admin = signup(client)
    set_rates(client, admin, "2026-11-01", JPY="0.0067", KWD="3.25", EUR="1.08")
    response = client.post(
        "/spends",
        json={"amount": amount, "currency": currency, "spend_date": "2026-11-01"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == stored
    assert response.json()["currency"] == currency.upper()


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 0, "currency": "USD", "spend_date": "2026-11-01"},
        {"amount": -5, "currency": "USD", "spend_date": "2026-11-01"},
        {"amount": "0.001", "currency": "USD", "spend_date": "2026-11-01"},
        {"amount": "1e30", "currency": "USD", "spend_date": "2026-11-01"},
        {"amount": "NaN", "currency": "USD", "spend_date": "2026-11-01"},
        {"amount": "Infinity", "currency": "USD", "spend_date": "2026-11-01"},
        {"amount": "12", "currency": "ZZZ", "spend_date": "2026-11-01"},
        {"amount": "12", "currency": "USD", "spend_date": "yesterday"},
        {"amount": "12", "currency": "USD", "spend_date": "1900-01-01"},
        # 2023-11-14T00:00:00Z as a Unix timestamp: a date is a string
        {"amount": "12", "currency": "USD", "spend_date": 1699920000},
        {"amount": "12", "currency": "USD", "spend_date": 1699920000.0},
        {"amount": "12", "currency": "USD"},
        {"amount": "12", "currency": "USD", "spend_date": "2026-11-01", "status": "approved"},
        {
            "amount": "12",
            "currency": "USD",
            "spend_date": "2026-11-01",
            "user_id": str(uuid.uuid4()),
        },
        {"amount": "12", "currency": "USD", "spend_date": "2026-11-01", "source": "card"},
        {"amount": "12", "currency": "USD", "spend_date": "2026-11-01", "category_id": "nope"},
        {"amount": "12", "currency": "USD", "spend_date": "2026-11-01", "description": "x" * 1001},
    ],
)
def test_bad_spend_bodies_are_422(client: TestClient, body: dict[str, Any]) -> None:
    admin = signup(client)
    response = client.post("/spends", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert client.get("/spends", headers=admin.headers).json()["total"] == 0


@pytest.mark.parametrize("field", ["category_id", "vendor_id", "team_id"])
def test_foreign_or_unknown_references_are_422(client: TestClient, field: str) -> None:
    admin = signup(client)
    other = signup(client)
    foreign = {
        "category_id": lambda: create_category(client, other)["id"],
        "vendor_id": lambda: create_vendor(client, other)["id"],
        "team_id": lambda: create_team(client, other)["id"],
    }[field]()
    for ref in (foreign, str(uuid.uuid4())):
        response = client.post(
            "/spends",
            json={"amount": "5", "currency": "USD", "spend_date": "2026-11-01", field: ref},
            headers=admin.headers,
        )
        assert response.status_code == 422
        assert response.json()["code"].startswith("invalid_")


def test_visibility_by_role(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    report = create_user(client, admin, manager_id=manager.id)
    teammate = create_user(client, admin)
    stranger = create_user(client, admin)
    finance = create_user(client, admin, role="finance")
    team = create_team(client, admin, manager_id=manager.id)
    client.post(
        f"/teams/{team['id']}/members", json={"user_id": teammate.id}, headers=admin.headers
    )

    by_report = submit_spend(client, report)
    by_teammate = submit_spend(client, teammate, team_id=team["id"])
    # a member's spend is the team's whether or not it names the team
    by_teammate_untagged = submit_spend(client, teammate)
    # a spend made for the team is the team's, by any member (finance belongs to it too)
    join_team(client, admin, team, finance)
    for_the_team = submit_spend(client, finance, team_id=team["id"])
    by_stranger = submit_spend(client, stranger)
    own = submit_spend(client, manager)

    def ids(actor: Actor) -> set[str]:
        return {s["id"] for s in client.get("/spends", headers=actor.headers).json()["items"]}

    everything = {
        by_report["id"],
        by_teammate["id"],
        by_teammate_untagged["id"],
        for_the_team["id"],
        by_stranger["id"],
        own["id"],
    }
    assert ids(stranger) == {by_stranger["id"]}
    assert ids(teammate) == {by_teammate["id"], by_teammate_untagged["id"]}
    assert ids(manager) == everything - {by_stranger["id"]}
    assert ids(finance) == ids(admin) == everything
    assert client.get(f"/spends/{by_stranger['id']}", headers=manager.headers).status_code == 404
    assert client.get(f"/spends/{by_report['id']}", headers=manager.headers).status_code == 200
    assert (
        client.get(f"/spends/{by_teammate_untagged['id']}", headers=manager.headers).status_code
        == 200
    )
    assert client.get(f"/spends/{by_report['id']}", headers=stranger.headers).status_code == 404


def test_filters_and_pagination(client: TestClient) -> None:
    admin = signup(client)
    category = create_category(client, admin)
    vendor = create_vendor(client, admin)
    employee = create_user(client, admin)
    submit_spend(client, admin, amount="10", spend_date="2026-01-10", category_id=category["id"])
    submit_spend(client, admin, amount="20", spend_date="2026-02-10", vendor_id=vendor["id"])
    submit_spend(client, employee, amount="30", spend_date="2026-03-10")
    client.post(
        "/policies", json={"name": "p", "rules": [approval_over(25)]}, headers=admin.headers
    )
    pending = submit_spend(client, employee, amount="40", spend_date="2026-03-11")

    def total(query: str) -> int:
        response = client.get(f"/spends?{query}", headers=admin.headers)
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    assert total("") == 4
    assert total(f"category_id={category['id']}") == 1
    assert total(f"vendor_id={vendor['id']}") == 1
    assert total(f"user_id={employee.id}") == 2
    assert total("status=pending") == 1
    assert total("date_from=2026-02-01&date_to=2026-03-10") == 2
    assert total("min_amount=20&max_amount=30") == 2
    assert total("min_amount=40&max_amount=40") == 1
    page = client.get("/spends?limit=2&offset=0", headers=admin.headers).json()
    assert page["items"][0]["id"] == pending["id"]
    assert len(page["items"]) == 2
    for bad in (
        "status=paid",
        "limit=500",
        "min_amount=abc",
        "date_from=2026-05-01&date_to=2026-01-01",
        "user_id=1",
    ):
        assert client.get(f"/spends?{bad}", headers=admin.headers).status_code == 422
    inverted = client.get("/spends?min_amount=30&max_amount=20", headers=admin.headers)
    assert inverted.status_code == 422, inverted.text
    assert inverted.json() == {
        "detail": "min_amount is more than max_amount",
        "code": "invalid_range",
    }


def test_sql_metacharacters_in_filters_are_harmless(client: TestClient) -> None:
    admin = signup(client)
    submit_spend(client, admin)
    for evil in ("' OR 1=1 --", "1; DROP TABLE spend", "%27%20OR%20%271%27=%271"):
        response = client.get(
            "/spends", params={"status": evil, "vendor_id": evil}, headers=admin.headers
        )
        assert response.status_code == 422
    assert client.get("/spends", headers=admin.headers).json()["total"] == 1


def test_possible_duplicate_flag(client: TestClient) -> None:
    admin = signup(client)
    category = create_category(client, admin)
    first = submit_spend(client, admin, amount="42.00", category_id=category["id"])
    second = submit_spend(client, admin, amount="42.00", category_id=category["id"])
    different = submit_spend(client, admin, amount="42.01", category_id=category["id"])
    no_category = submit_spend(client, admin, amount="42.00")
    assert first["flags"] == []
    assert second["flags"] == ["possible_duplicate"]
    assert different["flags"] == []
    assert no_category["flags"] == []
    # Matched on the category or the vendor that is given; a missing one matches nothing (not
    # the spends that lack it too).
    vendor = create_vendor(client, admin)
    vendor_only = submit_spend(client, admin, amount="42.00", vendor_id=vendor["id"])
    same_vendor = submit_spend(client, admin, amount="42.00", vendor_id=vendor["id"])
    both = submit_spend(
        client,
        admin,
        amount="42.00",
        category_id=create_category(client, admin)["id"],
        vendor_id=vendor["id"],
    )
    other_category = submit_spend(
        client, admin, amount="42.00", category_id=create_category(client, admin)["id"]
    )
    assert vendor_only["flags"] == []
    assert same_vendor["flags"] == ["possible_duplicate"]
    assert both["flags"] == ["possible_duplicate"]
    assert other_category["flags"] == []


def test_edit_pending_spend_reevaluates_and_replaces_open_steps(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(500), approval_over(1000, "role:finance", 20)])
    create_user(client, admin, role="finance")
    spend = submit_spend(client, employee, amount="600")
    assert spend["status"] == "pending"
    assert [a["status"] for a in spend["approvals"]] == ["pending"]

    bigger = client.patch(
        f"/spends/{spend['id']}", json={"amount": "1500"}, headers=employee.headers
    ).json()
    assert bigger["status"] == "pending"
    assert [(a["step"], a["status"]) for a in bigger["approvals"]] == [
        (1, "skipped"),
        (2, "pending"),
        (3, "waiting"),
    ]

    smaller = client.patch(
        f"/spends/{spend['id']}", json={"amount": "100"}, headers=employee.headers
    ).json()
    assert smaller["status"] == "approved"
    assert all(a["status"] == "skipped" for a in smaller["approvals"])
    # no longer pending: further edits are refused
    late = client.patch(
        f"/spends/{spend['id']}", json={"description": "late"}, headers=employee.headers
    )
    assert late.status_code == 409
    assert late.json()["code"] == "invalid_transition"


def test_only_the_submitter_edits_or_cancels(client: TestClient) -> None:
    admin = signup(client)
    create_policy(client, admin, [approval_over(0)])
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    spend = submit_spend(client, employee)
    assert (
        client.patch(
            f"/spends/{spend['id']}", json={"description": "x"}, headers=manager.headers
        ).status_code
        == 403
    )
    assert client.post(f"/spends/{spend['id']}/cancel", headers=admin.headers).status_code == 403
    assert (
        client.patch(
            f"/spends/{spend['id']}", json={"status": "approved"}, headers=employee.headers
        ).status_code
        == 422
    )
    assert (
        client.patch(
            f"/spends/{spend['id']}", json={"amount": None}, headers=employee.headers
        ).status_code
        == 422
    )
    cancelled = client.post(f"/spends/{spend['id']}/cancel", headers=employee.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["approvals"][0]["status"] == "skipped"
    again = client.post(f"/spends/{spend['id']}/cancel", headers=employee.headers)
    assert again.status_code == 409
    # the manager's queue no longer shows it
    assert client.get("/approvals", headers=manager.headers).json()["total"] == 0


def test_reimburse_only_approved_and_only_finance(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    spend = submit_spend(client, employee)
    assert (
        client.post(f"/spends/{spend['id']}/reimburse", headers=employee.headers).status_code == 403
    )
    paid = client.post(f"/spends/{spend['id']}/reimburse", headers=finance.headers)
    assert paid.status_code == 200
    assert paid.json()["status"] == "reimbursed"
    twice = client.post(f"/spends/{spend['id']}/reimburse", headers=finance.headers)
    assert twice.status_code == 409
    assert twice.json()["code"] == "invalid_transition"
    create_policy(
        client, admin, [{"condition": {}, "action": {"type": "block", "reason": "frozen budget"}}]
    )
    blocked = submit_spend(client, employee)
    assert blocked["status"] == "blocked"
    assert (
        client.post(f"/spends/{blocked['id']}/reimburse", headers=finance.headers).status_code
        == 409
    )


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"description": "x"}),
        ("POST", "/cancel", None),
        ("POST", "/reimburse", None),
    ],
)
def test_cross_tenant_spend_ids_are_404(
    client: TestClient, method: str, suffix: str, body: Any
) -> None:
    admin = signup(client)
    intruder = signup(client)
    create_policy(client, admin, [approval_over(0)])
    spend = submit_spend(client, admin)
    response = client.request(
        method, f"/spends/{spend['id']}{suffix}", json=body, headers=intruder.headers
    )
    assert response.status_code == 404
    assert client.get(f"/spends/{spend['id']}", headers=admin.headers).json()["status"] == "pending"


def test_idempotent_submit_replays(client: TestClient) -> None:
    admin = signup(client)
    headers = {**admin.headers, "Idempotency-Key": "spend-1"}
    body = {"amount": "12.50", "currency": "USD", "spend_date": "2026-11-01"}
    first = client.post("/spends", json=body, headers=headers)
    replay = client.post("/spends", json=body, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json()
    assert replay.headers["idempotent-replayed"] == "true"
    other = client.post("/spends", json={**body, "amount": "13"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    # the same JSON written otherwise replays; the same amount as another value does not
    rewritten = client.post(
        "/spends",
        content=b'{ "spend_date": "2026-11-01", "currency": "USD", "amount": "12.50" }',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert rewritten.status_code == 201, rewritten.text
    assert rewritten.json() == first.json()
    for amount in (12.50, "12.5"):
        changed = client.post("/spends", json={**body, "amount": amount}, headers=headers)
        assert changed.json()["code"] == "idempotency_key_reused"
    assert client.get("/spends", headers=admin.headers).json()["total"] == 1


def test_sixteen_concurrent_submits_with_one_key_make_one_spend(
    client: TestClient, live_server: str
) -> None:
    admin = signup(client)
    key = f"k-{uuid.uuid4()}"

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            return http.post(
                "/spends",
                json={"amount": "99.99", "currency": "USD", "spend_date": "2026-11-01"},
                headers={**admin.headers, "Idempotency-Key": key},
            )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(post, range(16)))
    assert {r.status_code for r in responses} <= {201, 409}
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert client.get("/spends", headers=admin.headers).json()["total"] == 1
    created = client.get("/audit-logs?action=spend.created", headers=admin.headers).json()
    assert created["total"] == 1


def test_a_listed_spend_reads_exactly_as_it_does_alone(client: TestClient) -> None:
    """A page reads its spends as rows of columns; one spend is read as an entity. Every kind of
    value must come out the same both ways (and through any other way a page is read, such as
    the JSON documents tried in the tenth session): the steps (one decided, with its comment),
    the receipts (one read, one failed), merged flags, a zero-decimal currency, a reimbursement
    time, a card spend, quotes, control characters and non-ASCII text."""
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin, manager_id=manager.id)
    category = create_category(client, admin)
    vendor = create_vendor(client, admin)
    create_policy(
        client,
        admin,
        [
            approval_over(100, "manager"),
            approval_over(100, "role:finance", priority=20),
            {"condition": {"amount_gt": 50}, "action": {"type": "flag", "flag": "big"}},
        ],
    )
    routed = submit_spend(
        client, employee, amount="250.00", description='Caf\u00e9 \u2615\n\t\U0001f600 "one"\\'
    )
    first_step = routed["approvals"][0]["id"]
    decided = client.post(
        f"/approvals/{first_step}/decision",
        json={"approved": True, "comment": "ok \u2713"},
        headers=manager.headers,
    )
    assert decided.status_code == 200, decided.text
    receipted = submit_spend(client, employee, amount="8.37", category_id=category["id"])
    for data, name, kind in [
        (pdf_receipt(), "r.pdf", "application/pdf"),
        (image_receipt("PNG", lines=[" "]), "blank.png", "image/png"),
    ]:
        uploaded = client.post(
            "/receipts",
            files={"file": (name, data, kind)},
            data={"spend_id": receipted["id"]},
            headers=employee.headers,
        )
        assert uploaded.status_code == 201, uploaded.text
    twice = [
        submit_spend(client, employee, amount="60.00", vendor_id=vendor["id"]) for _ in range(2)
    ]
    set_rates(client, admin, "2026-11-20", JPY="0.0067")
    yen = submit_spend(client, employee, amount="90", currency="JPY")
    paid = client.post(f"/spends/{yen['id']}/reimburse", headers=finance.headers)
    assert paid.status_code == 200, paid.text
    card = issue_card(client, admin, employee)
    authorized = authorize(client, webhook_secret(client, admin), card["id"], "12.50")
    assert authorized["approved"] is True, authorized

    page = client.get("/spends?limit=200", headers=finance.headers).json()
    assert page["total"] == 6
    listed = {item["id"]: item for item in page["items"]}
    for spend_id, item in listed.items():
        alone = client.get(f"/spends/{spend_id}", headers=finance.headers).json()
        assert item == alone
    steps = listed[routed["id"]]["approvals"]
    assert [s["step"] for s in steps] == [1, 2]
    assert steps[0]["status"] == "approved"
    assert steps[0]["comment"] == "ok \u2713"
    assert steps[0]["decided_at"]
    assert steps[0]["decided_at"].endswith("Z")
    assert listed[routed["id"]]["description"] == 'Caf\u00e9 \u2615\n\t\U0001f600 "one"\\'
    receipts = listed[receipted["id"]]["receipts"]
    assert [r["ocr_status"] for r in receipts] == ["done", "failed"]
    assert receipts[0]["extracted"]["total"] == "8.37"
    assert receipts[0]["verified"] is True
    assert receipts[1]["ocr_error"]
    assert listed[twice[1]["id"]]["flags"] == ["possible_duplicate", "big"]
    assert listed[yen["id"]]["amount"] == "90"
    assert listed[yen["id"]]["reimbursed_at"].endswith("Z")
    assert listed[authorized["spend_id"]]["card_id"] == card["id"]
    assert listed[authorized["spend_id"]]["source"] == "card"
