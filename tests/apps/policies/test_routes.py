from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.policies import service as policies_service
from spendtrackr.apps.policies.rules import Rule
from tests.factories import (
    approval_over,
    create_category,
    create_policy,
    create_team,
    create_user,
    create_vendor,
    signup,
    submit_spend,
)
from tests.statements import statements_sent

EXAMPLE = [
    {
        "condition": {"amount_gt": 500},
        "action": {"type": "require_approval", "approver": "manager"},
        "priority": 10,
    }
]


def test_condition_amounts_are_stored_without_exponents(client: TestClient) -> None:
    """Decimal's own text of "1e2" is "1E+2", which came back in the rule as such."""
    admin = signup(client)
    created = create_policy(
        client, admin, [{**EXAMPLE[0], "condition": {"amount_gt": "1e2", "amount_lte": 2.5e3}}]
    )
    assert created["rules"][0]["condition"] == {"amount_gt": "100", "amount_lte": "2500.0"}
    fetched = client.get(f"/policies/{created['id']}", headers=admin.headers).json()
    assert fetched["rules"] == created["rules"]


def test_policy_crud(client: TestClient) -> None:
    admin = signup(client)
    created = create_policy(client, admin, EXAMPLE, name="Over 500")
    assert created["rules"][0]["condition"] == {"amount_gt": "500"}
    assert created["is_active"] is True
    fetched = client.get(f"/policies/{created['id']}", headers=admin.headers).json()
    assert fetched["name"] == "Over 500"
    patched = client.patch(
        f"/policies/{created['id']}",
        json={
            "rules": [
                {
                    "condition": {"not": {"currency_in": ["USD"]}},
                    "action": {"type": "flag", "flag": "fx"},
                }
            ]
        },
        headers=admin.headers,
    ).json()
    assert patched["rules"] == [
        {
            "condition": {"not": {"currency_in": ["USD"]}},
            "action": {"type": "flag", "flag": "fx"},
            "priority": 100,
        }
    ]
    assert (
        client.patch(
            f"/policies/{created['id']}", json={"is_active": False}, headers=admin.headers
        ).json()["is_active"]
        is False
    )
    assert client.get("/policies", headers=admin.headers).json()["total"] == 1
    assert client.delete(f"/policies/{created['id']}", headers=admin.headers).status_code == 200
    assert client.get(f"/policies/{created['id']}", headers=admin.headers).status_code == 404
    actions = [
        e["action"]
        for e in client.get("/audit-logs?entity_type=policy", headers=admin.headers).json()["items"]
    ]
    assert actions == ["policy.deleted", "policy.updated", "policy.updated", "policy.created"]


def test_inactive_and_changed_policies_apply_at_once(client: TestClient) -> None:
    admin = signup(client)
    policy = create_policy(client, admin, [approval_over(100, "role:admin")])
    create_user(client, admin, role="admin")
    assert submit_spend(client, admin, amount="200")["status"] == "pending"
    client.patch(f"/policies/{policy['id']}", json={"is_active": False}, headers=admin.headers)
    assert submit_spend(client, admin, amount="201")["status"] == "approved"
    client.patch(
        f"/policies/{policy['id']}",
        json={
            "is_active": True,
            "rules": [{"condition": {}, "action": {"type": "block", "reason": "stop"}}],
        },
        headers=admin.headers,
    )
    assert submit_spend(client, admin, amount="5")["status"] == "blocked"


def policy_reads() -> AbstractContextManager[list[str]]:
    """The statements about the `policy` table sent meanwhile."""
    return statements_sent(lambda statement: re.search(r"\bpolicy\b", statement) is not None)


def test_a_spend_reads_the_policies_only_after_they_change(client: TestClient) -> None:
    """The compiled rules are kept by the company's policy version, read with the company: while
    the policies stay the same a submission sends nothing about them, and the first after any
    change (creation, edit, deletion) reads them again."""
    admin = signup(client)
    create_user(client, admin, role="admin")
    policy = create_policy(client, admin, [approval_over(100, "role:admin")])
    assert submit_spend(client, admin, amount="200")["status"] == "pending"
    with policy_reads() as reads:
        assert submit_spend(client, admin, amount="200")["status"] == "pending"
    assert reads == []
    changes = [
        lambda: client.patch(
            f"/policies/{policy['id']}", json={"is_active": False}, headers=admin.headers
        ),
        lambda: create_policy(client, admin, [approval_over(10, "role:admin")]),
        lambda: client.delete(f"/policies/{policy['id']}", headers=admin.headers),
    ]
    for change, status in zip(changes, ["approved", "pending", "pending"], strict=True):
        change()
        with policy_reads() as reads:
            assert submit_spend(client, admin, amount="50")["status"] == status
            assert submit_spend(client, admin, amount="50")["status"] == status
        assert len(reads) == 1


def test_rules_are_kept_under_the_version_they_were_read_with(
    client: TestClient, app: FastAPI
) -> None:
    """A company read before a policy changed (its version the old one) gets the rules in force
    now, and they are kept under the new version, never under the old one."""
    admin = signup(client)
    company_id = uuid.UUID(admin.company_id)
    with Session(app.state.engine) as session:
        stale = session.get(Company, company_id)
        assert stale is not None
        session.expunge(stale)
    create_policy(client, admin, [{"condition": {}, "action": {"type": "block", "reason": "x"}}])
    with Session(app.state.engine) as session:
        assert len(policies_service.active_rules(session, company=stale)) == 1
        fresh = session.get(Company, company_id)
        assert fresh is not None
        assert fresh.policy_version != stale.policy_version
        with policy_reads() as reads:
            assert len(policies_service.active_rules(session, company=fresh)) == 1
        assert reads == []
        # The old version's set (no rules) was never replaced: a reader of it reads again.
        with policy_reads() as reads:
            assert len(policies_service.active_rules(session, company=stale)) == 1
        assert len(reads) == 1


def test_a_change_moves_on_the_company_its_transaction_holds(
    client: TestClient, app: FastAPI
) -> None:
    """A company loaded before a policy change in the same transaction has its version moved
    with the row, so what that transaction decides next uses the new rules."""
    admin = signup(client)
    with Session(app.state.engine) as session:
        company = session.get(Company, uuid.UUID(admin.company_id))
        assert company is not None
        assert policies_service.active_rules(session, company=company) == ()
        policies_service.create_policy(
            session,
            company_id=company.id,
            actor_id=uuid.UUID(admin.id),
            name="Block all",
            is_active=True,
            rules=[
                Rule.model_validate({"condition": {}, "action": {"type": "block", "reason": "x"}})
            ],
        )
        assert len(policies_service.active_rules(session, company=company)) == 1
        session.commit()


def test_policy_changes_racing_submissions_fail_none_of_them(
    client: TestClient, live_server: str
) -> None:
    """A policy change takes the company's row (the submissions hold it shared) before it writes:
    edits racing sixteen submitters fail none of them, the audit chain stays whole, and the
    next spend is decided by the rules the last edit left."""
    admin = signup(client)
    employees = [create_user(client, admin) for _ in range(4)]
    block = [{"condition": {"amount_gt": 100}, "action": {"type": "block", "reason": "over"}}]
    policy = create_policy(client, admin, block)

    def submit(i: int) -> str:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            response = http.post(
                "/spends",
                json={"amount": "150.00", "currency": "USD", "spend_date": "2026-11-20"},
                headers=employees[i % len(employees)].headers,
            )
            assert response.status_code == 201, response.text
            return str(response.json()["status"])

    def toggle(i: int) -> str:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            response = http.patch(
                f"/policies/{policy['id']}", json={"is_active": i % 2 == 1}, headers=admin.headers
            )
            assert response.status_code == 200, response.text
            return "toggled"

    with ThreadPoolExecutor(max_workers=16) as pool:
        work = [pool.submit(toggle if i % 4 == 0 else submit, i) for i in range(48)]
        outcomes = [w.result() for w in work]
    assert outcomes.count("toggled") == 12
    assert set(outcomes) - {"toggled"} <= {"approved", "blocked"}
    # Whichever toggle committed last, the next spend is decided by what it left.
    active = client.get(f"/policies/{policy['id']}", headers=admin.headers).json()["is_active"]
    assert submit(1) == ("blocked" if active else "approved")
    verified = client.get("/audit-logs/verify", headers=admin.headers).json()
    assert verified["valid"] is True


@pytest.mark.parametrize(
    ("rules", "named"),
    [
        ([{"condition": {"amount_more": 1}, "action": {"type": "auto_approve"}}], "amount_more"),
        ([{"condition": {"amount_gt": "x"}, "action": {"type": "auto_approve"}}], "amount_gt"),
        ([{"condition": {}, "action": {"type": "teleport"}}], "action"),
        (
            [{"condition": {}, "action": {"type": "require_approval", "approver": "boss"}}],
            "approver",
        ),
        ([{"condition": {}, "action": {"type": "flag"}}], "flag"),
        ([{"condition": {}, "action": {"type": "auto_approve"}, "priority": "high"}], "priority"),
        ([{"condition": {}, "action": {"type": "auto_approve"}, "priority": "10"}], "priority"),
        (
            [{"condition": {"receipt_missing": "yes"}, "action": {"type": "auto_approve"}}],
            "receipt_missing",
        ),
        ([{"condition": {}, "action": {"type": "auto_approve"}, "weight": 1}], "weight"),
        ("not a list", "rules"),
    ],
)
def test_invalid_rules_are_422_naming_the_field(client: TestClient, rules: Any, named: str) -> None:
    admin = signup(client)
    response = client.post("/policies", json={"name": "bad", "rules": rules}, headers=admin.headers)
    assert response.status_code == 422
    assert any(named in [str(part) for part in err["loc"]] for err in response.json()["detail"]), (
        response.json()
    )


def test_switches_take_json_booleans_only(client: TestClient) -> None:
    """`"yes"`, `"false"` or `1` for a switch is a client bug: a 422 naming it, never a guess."""
    admin = signup(client)
    policy = client.post("/policies", json={"name": "p", "rules": []}, headers=admin.headers).json()
    for method, path, body in (
        ("POST", "/policies", {"name": "q", "is_active": "yes", "rules": []}),
        ("PATCH", f"/policies/{policy['id']}", {"is_active": "false"}),
        ("PATCH", f"/policies/{policy['id']}", {"is_active": 0}),
        ("POST", "/policies/evaluate", {"amount": "1", "currency": "USD", "has_receipt": "true"}),
    ):
        response = client.request(method, path, json=body, headers=admin.headers)
        assert response.status_code == 422, (path, body, response.json())
        named = {str(part) for err in response.json()["detail"] for part in err["loc"]}
        assert named & {"is_active", "has_receipt"}, response.json()
    assert client.get(f"/policies/{policy['id']}", headers=admin.headers).json()["is_active"]


def test_huge_or_deep_policies_are_refused_cheaply(client: TestClient) -> None:
    admin = signup(client)
    deep: dict[str, Any] = {"amount_gt": 1}
    for _ in range(50):
        deep = {"not": deep}
    assert (
        client.post(
            "/policies",
            json={
                "name": "deep",
                "rules": [{"condition": deep, "action": {"type": "auto_approve"}}],
            },
            headers=admin.headers,
        ).status_code
        == 422
    )
    many = [{"condition": {}, "action": {"type": "auto_approve"}}] * 101
    assert (
        client.post(
            "/policies", json={"name": "many", "rules": many}, headers=admin.headers
        ).status_code
        == 422
    )
    wide = {"category_in": [str(uuid.uuid4()) for _ in range(501)]}
    assert (
        client.post(
            "/policies",
            json={
                "name": "wide",
                "rules": [{"condition": wide, "action": {"type": "auto_approve"}}],
            },
            headers=admin.headers,
        ).status_code
        == 422
    )


def test_evaluate_is_a_dry_run(client: TestClient) -> None:
    admin = signup(client)
    category = create_category(client, admin)
    employee = create_user(client, admin)
    create_policy(
        client,
        admin,
        [
            approval_over(500),
            {
                "condition": {"category_in": [category["id"]]},
                "action": {"type": "flag", "flag": "travel"},
            },
            {
                "condition": {"user_role_in": ["employee"], "amount_gt": 10000},
                "action": {"type": "block", "reason": "too much"},
            },
        ],
    )
    small = client.post(
        "/policies/evaluate", json={"amount": "123.45", "currency": "USD"}, headers=admin.headers
    ).json()
    assert small["outcome"] == "approved"
    big = client.post(
        "/policies/evaluate",
        json={"amount": 600, "currency": "USD", "category_id": category["id"]},
        headers=admin.headers,
    ).json()
    assert big["outcome"] == "pending"
    assert big["approvers"] == ["manager"]
    assert big["flags"] == ["travel"]
    assert len(big["matched_rules"]) == 2
    as_employee = client.post(
        "/policies/evaluate",
        json={"amount": 20000, "currency": "USD", "user_id": employee.id},
        headers=admin.headers,
    ).json()
    assert as_employee["outcome"] == "blocked"
    assert as_employee["block_reason"] == "too much"
    assert client.get("/spends", headers=admin.headers).json()["total"] == 0
    other = signup(client)
    assert (
        client.post(
            "/policies/evaluate",
            json={"amount": 1, "currency": "USD", "user_id": other.id},
            headers=admin.headers,
        ).status_code
        == 404
    )


@pytest.mark.parametrize("role", ["employee", "manager"])
def test_policies_hidden_from_employees_and_managers(client: TestClient, role: str) -> None:
    admin = signup(client)
    actor = create_user(client, admin, role=role)
    policy = create_policy(client, admin, EXAMPLE)
    assert client.get("/policies", headers=actor.headers).status_code == 403
    assert client.get(f"/policies/{policy['id']}", headers=actor.headers).status_code == 403
    assert (
        client.post("/policies", json={"name": "x", "rules": []}, headers=actor.headers).status_code
        == 403
    )
    assert (
        client.post(
            "/policies/evaluate", json={"amount": 1, "currency": "USD"}, headers=actor.headers
        ).status_code
        == 403
    )


def test_finance_reads_but_does_not_write(client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    policy = create_policy(client, admin, EXAMPLE)
    assert client.get(f"/policies/{policy['id']}", headers=finance.headers).status_code == 200
    assert (
        client.patch(
            f"/policies/{policy['id']}", json={"name": "x"}, headers=finance.headers
        ).status_code
        == 403
    )
    assert client.delete(f"/policies/{policy['id']}", headers=finance.headers).status_code == 403


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"name": "stolen"}), ("DELETE", None)]
)
def test_cross_tenant_policy_ids_are_404(client: TestClient, method: str, body: Any) -> None:
    admin = signup(client)
    intruder = signup(client)
    policy = create_policy(client, admin, EXAMPLE)
    assert (
        client.request(
            method, f"/policies/{policy['id']}", json=body, headers=intruder.headers
        ).status_code
        == 404
    )
    assert client.get(f"/policies/{policy['id']}", headers=admin.headers).json()["name"] == "Policy"


def test_rules_name_only_the_companys_own_ids(client: TestClient) -> None:
    """A category, vendor or team from another company (or none) in a condition, or an approver
    who is not an active user of the company, is a 422 naming the rule; nothing is stored."""
    admin, other = signup(client), signup(client)
    own_category, foreign_category = create_category(client, admin), create_category(client, other)
    own_vendor, foreign_vendor = create_vendor(client, admin), create_vendor(client, other)
    own_team, foreign_team = create_team(client, admin), create_team(client, other)
    approver, foreign_user = create_user(client, admin, role="finance"), create_user(client, other)
    leaver = create_user(client, admin, role="finance")
    assert client.delete(f"/admin/users/{leaver.id}", headers=admin.headers).status_code == 200
    approve = {"type": "require_approval", "approver": f"user:{approver.id}"}
    good = [
        {"condition": {"amount_gt": 1}, "action": {"type": "flag", "flag": "big"}},
        {
            "condition": {
                "category_in": [own_category["id"]],
                "any": [{"vendor_in": [own_vendor["id"]]}, {"not": {"team_in": [own_team["id"]]}}],
            },
            "action": approve,
        },
    ]
    created = create_policy(client, admin, good)
    policy = f"/policies/{created['id']}"

    def refused(rules: list[dict[str, Any]], code: str) -> None:
        for response in (
            client.post("/policies", json={"name": "P", "rules": rules}, headers=admin.headers),
            client.patch(policy, json={"rules": rules}, headers=admin.headers),
        ):
            assert response.status_code == 422, response.text
            assert response.json()["code"] == code
            assert "rules[1]" in response.json()["detail"]

    nested = good[1]["condition"]
    refused(
        [good[0], {**good[1], "condition": {"category_in": [foreign_category["id"]]}}],
        "invalid_category",
    )
    refused(
        [
            good[0],
            {**good[1], "condition": {**nested, "any": [{"vendor_in": [foreign_vendor["id"]]}]}},
        ],
        "invalid_vendor",
    )
    refused(
        [good[0], {**good[1], "condition": {"not": {"not": {"team_in": [foreign_team["id"]]}}}}],
        "invalid_team",
    )
    refused(
        [good[0], {**good[1], "condition": {"category_in": [str(uuid.uuid4())]}}],
        "invalid_category",
    )
    for user in (foreign_user.id, leaver.id, str(uuid.uuid4())):
        bad_approver = {"type": "require_approval", "approver": f"user:{user}"}
        refused([good[0], {**good[1], "action": bad_approver}], "invalid_approver")
    assert client.get(policy, headers=admin.headers).json()["rules"] == created["rules"]
    assert client.get("/policies", headers=admin.headers).json()["total"] == 1
    renamed = client.patch(policy, json={"name": "Renamed"}, headers=admin.headers)
    assert renamed.status_code == 200


def test_a_category_vendor_or_team_a_policy_names_cannot_be_deleted(client: TestClient) -> None:
    """409 `in_use` naming the policies (active or not, the name nested anywhere in a
    condition); once the rules no longer name it, it can be deleted."""
    admin = signup(client)
    category, vendor, team = (
        create_category(client, admin),
        create_vendor(client, admin),
        create_team(client, admin),
    )
    flag = {"type": "flag", "flag": "watch"}
    first = create_policy(
        client,
        admin,
        [{"condition": {"category_in": [category["id"]]}, "action": flag}],
        name="Meals",
    )
    second = create_policy(
        client,
        admin,
        [
            {"condition": {}, "action": flag},
            {
                "condition": {"any": [{"amount_gt": 1}, {"not": {"vendor_in": [vendor["id"]]}}]},
                "action": flag,
            },
            {"condition": {"not": {"any": [{"team_in": [team["id"]]}]}}, "action": flag},
        ],
        name="Nested",
    )
    assert (
        client.patch(
            f"/policies/{second['id']}", json={"is_active": False}, headers=admin.headers
        ).status_code
        == 200
    )
    for path, names in (
        (f"/categories/{category['id']}", '"Meals"'),
        (f"/vendors/{vendor['id']}", '"Nested"'),
        (f"/teams/{team['id']}", '"Nested"'),
    ):
        refused = client.delete(path, headers=admin.headers)
        assert refused.status_code == 409, path
        assert refused.json()["code"] == "in_use"
        assert names in refused.json()["detail"]
        assert client.get(path, headers=admin.headers).status_code == 200
    unrelated = create_category(client, admin)
    assert client.delete(f"/categories/{unrelated['id']}", headers=admin.headers).status_code == 200
    assert client.delete(f"/policies/{first['id']}", headers=admin.headers).status_code == 200
    assert (
        client.patch(
            f"/policies/{second['id']}",
            json={"rules": [{"condition": {}, "action": flag}]},
            headers=admin.headers,
        ).status_code
        == 200
    )
    for path in (
        f"/categories/{category['id']}",
        f"/vendors/{vendor['id']}",
        f"/teams/{team['id']}",
    ):
        assert client.delete(path, headers=admin.headers).status_code == 200, path
        assert client.get(path, headers=admin.headers).status_code == 404


def test_require_approval_without_an_approver_means_the_manager(client: TestClient) -> None:
    """The original backend guide's example: `{"type": "require_approval"}` with no approver."""
    admin = signup(client)
    response = client.post(
        "/policies",
        json={
            "name": "Over 100",
            "is_active": True,
            "rules": [{"condition": {"amount_gt": 100}, "action": {"type": "require_approval"}}],
        },
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    stored = client.get(f"/policies/{response.json()['id']}", headers=admin.headers).json()
    assert stored["rules"][0]["action"] == {"type": "require_approval", "approver": "manager"}
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    spend = submit_spend(client, employee, amount="150")
    assert spend["status"] == "pending"
    assert spend["approvals"][0]["approver_id"] == manager.id


def test_a_draft_is_tried_on_the_latest_spends(client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    big = create_policy(
        client,
        admin,
        [
            {
                "condition": {"amount_gt": 100},
                "action": {"type": "require_approval", "approver": "manager"},
            }
        ],
    )
    for amount in ("50.00", "150.00", "500.00"):
        answer = client.post(
            "/spends",
            json={
                "amount": amount,
                "currency": "USD",
                "spend_date": "2026-11-05",
                "description": f"spend {amount}",
            },
            headers=employee.headers,
        )
        assert answer.status_code == 201
    block_over_400 = [
        {"condition": {"amount_gt": 400}, "action": {"type": "block", "reason": "Too much"}}
    ]

    added = client.post(
        "/policies/dry-run", json={"rules": block_over_400, "name": "Cap"}, headers=admin.headers
    )
    assert added.status_code == 200, added.text
    body = added.json()
    assert (body["evaluated"], body["changed"]) == (3, 1)
    assert body["outcomes"] == {"approved": 1, "pending": 1, "blocked": 1}
    by_amount = {i["amount"]: i for i in body["items"]}
    assert by_amount["500.00"]["outcome_then"] == "pending"
    assert by_amount["500.00"]["outcome"] == "blocked"
    assert by_amount["500.00"]["block_reason"] == "Too much"
    assert by_amount["150.00"]["approvers"] == ["manager"]
    assert [m["policy_name"] for m in by_amount["150.00"]["matched_rules"]] == ["Policy"]

    # In place of the existing policy: only the cap is left.
    replaced = client.post(
        "/policies/dry-run",
        json={"rules": block_over_400, "policy_id": big["id"], "limit": 2},
        headers=admin.headers,
    ).json()
    assert replaced["evaluated"] == 2  # the latest two
    assert {i["amount"]: i["outcome"] for i in replaced["items"]} == {
        "500.00": "blocked",
        "150.00": "approved",
    }
    assert replaced["changed"] == 2

    # Validated as a saved policy would be; nothing is written either way.
    unknown = client.post(
        "/policies/dry-run",
        json={
            "rules": [
                {
                    "condition": {"category_in": [str(uuid.uuid4())]},
                    "action": {"type": "auto_approve"},
                }
            ]
        },
        headers=admin.headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "invalid_category"
    assert (
        client.post("/policies/dry-run", json={"rules": "x"}, headers=admin.headers).status_code
        == 422
    )
    assert (
        client.post(
            "/policies/dry-run", json={"rules": block_over_400}, headers=employee.headers
        ).status_code
        == 403
    )
    statuses = sorted(
        s["status"] for s in client.get("/spends", headers=admin.headers).json()["items"]
    )
    assert statuses == ["approved", "pending", "pending"]
    assert len(client.get("/policies", headers=admin.headers).json()["items"]) == 1
