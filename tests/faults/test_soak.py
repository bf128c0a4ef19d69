"""A soak: concurrent clients of several tenants, every role, a mix of reads and writes, for a
couple of thousand requests against a real server; then the invariants must all hold."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx2 as httpx
from fastapi.testclient import TestClient

from tests.factories import (
    Actor,
    approval_over,
    create_category,
    create_policy,
    create_user,
    issue_card,
    signup,
    webhook_secret,
)

REQUESTS_PER_CLIENT = 120


class Tenant:
    def __init__(self, client: TestClient) -> None:
        self.admin = signup(client)
        self.finance = create_user(client, self.admin, role="finance")
        self.manager = create_user(client, self.admin, role="manager")
        self.employees = [
            create_user(client, self.admin, manager_id=self.manager.id) for _ in range(2)
        ]
        self.category = create_category(client, self.admin)
        create_policy(client, self.admin, [approval_over(300, "manager")])
        self.card = issue_card(
            client, self.admin, self.employees[0], [{"amount": "200.00", "interval": "daily"}]
        )
        self.secret = webhook_secret(client, self.admin)
        self.created: list[str] = []
        self.approved_card_total = Decimal(0)
        self.lock = threading.Lock()


def _client_loop(
    base: str, tenant: Tenant, others: list[Tenant], seed: int, seen: Counter[str]
) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=60) as http:
        for i in range(REQUESTS_PER_CLIENT):
            roll = rng.random()
            actor: Actor = rng.choice(
                [tenant.admin, tenant.finance, tenant.manager, *tenant.employees]
            )
            if roll < 0.35:
                employee = rng.choice(tenant.employees)
                amount = f"{rng.randint(1, 600)}.{rng.randint(0, 99):02d}"
                response = http.post(
                    "/spends",
                    json={
                        "amount": amount,
                        "currency": "USD",
                        "spend_date": "2026-11-01",
                        "category_id": tenant.category["id"],
                    },
                    headers={**employee.headers, "Idempotency-Key": f"soak-{seed}-{i}"},
                )
                if response.status_code == 201:
                    with tenant.lock:
                        tenant.created.append(response.json()["id"])
            elif roll < 0.50:
                response = http.post(
                    "/card-network/authorizations",
                    json={
                        "card_id": tenant.card["id"],
                        "amount": f"{rng.randint(1, 30)}.00",
                        "currency": "USD",
                        "merchant_name": "Soak",
                        "authorization_id": f"a-{seed}-{i}",
                    },
                    headers=tenant.secret,
                )
                if response.status_code == 200 and response.json()["approved"]:
                    with tenant.lock:
                        tenant.created.append(response.json()["spend_id"])
            elif roll < 0.65:
                response = http.get("/approvals", headers=tenant.manager.headers)
                queue = response.json()["items"]
                if queue:
                    response = http.post(
                        f"/approvals/{queue[0]['id']}/decision",
                        json={"approved": rng.random() < 0.8},
                        headers=tenant.manager.headers,
                    )
            elif roll < 0.75:
                response = http.get(
                    "/spends?status=approved&limit=5", headers=tenant.finance.headers
                )
                approved = response.json()["items"]
                manual = [s for s in approved if s["source"] == "manual"]
                if manual:
                    response = http.post(
                        f"/spends/{manual[0]['id']}/reimburse", headers=tenant.finance.headers
                    )
            elif roll < 0.90:
                response = http.get(
                    rng.choice(["/spends?limit=20", "/notifications", "/categories", "/users/me"]),
                    headers=actor.headers,
                )
            else:
                # probe another tenant's objects: must look like they do not exist
                other = rng.choice(others)
                if other.created:
                    response = http.get(
                        f"/spends/{rng.choice(other.created)}", headers=actor.headers
                    )
                    assert response.status_code == 404, response.text
                response = http.get(f"/cards/{other.card['id']}", headers=tenant.admin.headers)
                assert response.status_code == 404
            assert response.status_code < 500, response.text
            seen[str(response.status_code)] += 1


def test_soak_keeps_every_invariant(client: TestClient, live_server: str) -> None:
    tenants = [Tenant(client) for _ in range(3)]
    seen: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [
            pool.submit(
                _client_loop, live_server, t, [o for o in tenants if o is not t], seed, seen
            )
            for seed, t in enumerate(tenants * 2)
        ]
        for future in futures:
            future.result()
    assert sum(seen.values()) == REQUESTS_PER_CLIENT * 6
    assert not [code for code in seen if code.startswith("5")]
    for tenant in tenants:
        admin = tenant.admin.headers
        assert client.get("/audit-logs/verify", headers=admin).json()["valid"] is True
        # every spend a client was told about exists, and the company has no others
        listed = client.get("/spends?limit=200", headers=admin).json()
        listed_ids = {s["id"] for s in listed["items"]}
        assert set(tenant.created) <= listed_ids
        assert listed["total"] == len(set(tenant.created))
        # the ledger balances, journal by journal
        journals: dict[str, Decimal] = defaultdict(Decimal)
        for line in client.get("/exports/accounting.csv?format=json", headers=admin).json()[
            "items"
        ]:
            journals[line["journal_id"]] += Decimal(line["debit"]) - Decimal(line["credit"])
        assert set(journals.values()) <= {Decimal(0)}
        # the card never went over its daily limit
        card_spend = sum(
            Decimal(s["amount"]) for s in listed["items"] if s["card_id"] == tenant.card["id"]
        )
        assert card_spend <= Decimal("200.00")
        # approved and reimbursed spends all have journals; nobody else's are visible
        posted = {
            line["spend_id"]
            for line in client.get("/exports/accounting.csv?format=json", headers=admin).json()[
                "items"
            ]
        }
        decided = {s["id"] for s in listed["items"] if s["status"] in ("approved", "reimbursed")}
        assert decided == posted
