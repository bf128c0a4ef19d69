"""Each page's work through the web app, checked against what the API then holds."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.web.api import Api
from tests.factories import Actor, create_category, create_policy, create_user, signup
from tests.receipts import pdf_receipt
from tests.web.helpers import signed_in, text

MANAGER_APPROVES = [
    {"condition": {"amount_gt": 5}, "action": {"type": "require_approval", "approver": "manager"}}
]


def submit(client: TestClient, actor: Actor, amount: str, description: str) -> dict[str, Any]:
    answer = client.post(
        "/spends",
        json={
            "amount": amount,
            "currency": "USD",
            "spend_date": "2026-11-03",
            "description": description,
        },
        headers=actor.headers,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_a_spend_with_its_receipt_without_javascript(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    category = create_category(client, admin, name="Travel")
    browser = signed_in(app, employee.email)
    form = browser.get("/app/spends/new")
    assert "Travel" in text(form)
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', form.text)
    assert key

    fields = {
        "amount": "8.37",
        "currency": "usd",
        "spend_date": "2026-11-20",
        "description": "Coffee",
        "category_id": category["id"],
        "idempotency_key": key.group(1),
    }
    pdf = pdf_receipt()
    files = {"receipt": ("receipt.pdf", pdf, "application/pdf")}
    sent = browser.post("/app/spends/new", fields, files=files)
    assert sent.status_code == 303, sent.text
    spend_id = sent.headers["location"].split("/")[3].split("?")[0]
    again = browser.post("/app/spends/new", fields)  # a double submit: the same spend
    assert again.headers["location"] == sent.headers["location"]

    spend = client.get(f"/spends/{spend_id}", headers=employee.headers).json()
    assert (spend["amount"], spend["currency"], spend["category_id"]) == (
        "8.37",
        "USD",
        category["id"],
    )
    assert len(spend["receipts"]) == 1
    page = browser.get(sent.headers["location"])
    assert "Submitted: the policies decided approved" in text(page)
    assert f"/app/receipts/{spend['receipts'][0]['id']}/file" in page.text
    receipt = browser.get(f"/app/receipts/{spend['receipts'][0]['id']}/file")
    assert receipt.status_code == 200
    assert receipt.headers["content-type"] == "application/pdf"
    assert receipt.content == pdf
    assert client.get("/spends", headers=employee.headers).json()["total"] == 1


def test_a_refused_spend_says_why_and_writes_nothing(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    browser = signed_in(app, employee.email)
    refused = browser.post(
        "/app/spends/new", {"amount": "-3", "currency": "USD", "spend_date": "2026-11-20"}
    )
    assert refused.status_code == 422
    assert "amount" in text(refused)
    assert 'value="-3"' in refused.text  # the form comes back as it was sent
    assert client.get("/spends", headers=employee.headers).json()["total"] == 0


def test_filters_and_another_persons_spend(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    one, other = create_user(client, admin), create_user(client, admin)
    submit(client, one, "10.00", "Taxi")
    submit(client, one, "99.00", "Hotel")
    secret = submit(client, other, "50.00", "Not yours")
    browser = signed_in(app, one.email)
    listed = text(browser.get("/app/spends?min_amount=50"))
    assert "Hotel" in listed
    assert "Taxi" not in listed
    assert "Not yours" not in listed
    bad = browser.get("/app/spends?min_amount=90&max_amount=10")
    assert bad.status_code == 200
    assert "max_amount" in text(bad)
    hidden = browser.get(f"/app/spends/{secret['id']}")
    assert hidden.status_code == 404
    everyone = text(signed_in(app, admin.email).get("/app/spends?everyone=1"))
    assert "Taxi" in everyone
    assert "Not yours" in everyone


def test_the_inbox_approves_rejects_and_approves_in_bulk(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, MANAGER_APPROVES)
    spends = [submit(client, employee, "20.00", f"Spend {i}") for i in range(4)]
    steps = {s["id"]: s["approvals"][0]["id"] for s in spends}
    browser = signed_in(app, manager.email)
    inbox = browser.get("/app/approvals")
    assert "4 waiting" in text(inbox)
    assert "A employee" in text(inbox)

    no_reason = browser.post(f"/app/approvals/{steps[spends[0]['id']]}", {"decision": "reject"})
    assert no_reason.status_code == 422
    assert "Say why" in text(no_reason)
    rejected = browser.post(
        f"/app/approvals/{steps[spends[0]['id']]}", {"decision": "reject", "comment": "No receipt"}
    )
    assert rejected.status_code == 303
    twice = browser.post(f"/app/approvals/{steps[spends[0]['id']]}", {"decision": "approve"})
    assert twice.status_code == 409

    bulk = browser.client.post(
        "/app/approvals",
        data={
            "csrf": browser.csrf("/app/approvals"),
            "approval_id": [steps[s["id"]] for s in spends[1:3]],
        },
    )
    assert bulk.status_code == 303
    assert bulk.headers["location"] == "/app/approvals?done=bulk&n=2"
    assert "Approved 2" in text(browser.get(bulk.headers["location"]))
    statuses = {
        s["description"]: s["status"]
        for s in client.get("/spends", headers=employee.headers).json()["items"]
    }
    assert statuses == {
        "Spend 0": "rejected",
        "Spend 1": "approved",
        "Spend 2": "approved",
        "Spend 3": "pending",
    }
    trail = text(signed_in(app, employee.email).get(f"/app/spends/{spends[0]['id']}"))
    assert "rejected by A manager" in trail
    assert "No receipt" in trail


def test_pages_follow_the_apis_permissions(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    employee = signed_in(app, create_user(client, admin).email)
    for path in ("/app/dashboard", "/app/admin/users", "/app/admin/policies"):
        page = employee.get(path)
        assert page.status_code == 403, path
        assert "Insufficient permissions" in text(page)
    menu = text(employee.get("/app/spends"))
    assert "Dashboard" not in menu
    assert "Admin" not in menu
    assert "Approvals" not in menu
    refused = employee.post("/app/admin/users", {"email": "x@example.com", "full_name": "X"})
    assert refused.status_code == 403
    assert client.get("/admin/users", headers=admin.headers).json()["total"] == 2


def test_cards_issue_freeze_and_limits(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    holder = create_user(client, admin)
    browser = signed_in(app, finance.email)
    page = browser.get("/app/cards")
    assert "Issue a card" in text(page)
    assert "A employee" in text(page)
    issued = browser.post(
        "/app/cards",
        {
            "user_id": holder.id,
            "currency": "usd",
            "limit_amount": "500",
            "limit_interval": "monthly",
            "label": "Travel",
        },
    )
    assert issued.status_code == 303, issued.text
    card = client.get("/cards", headers=admin.headers).json()["items"][0]
    assert card["spending_limits"] == [{"amount": "500.00", "interval": "monthly"}]

    assert browser.post(f"/app/cards/{card['id']}/status", {"to": "freeze"}).status_code == 303
    assert client.get(f"/cards/{card['id']}", headers=admin.headers).json()["status"] == "frozen"
    bad = browser.post(
        f"/app/cards/{card['id']}/limits", {"limit_amount": "-5", "limit_interval": "daily"}
    )
    assert bad.status_code == 422
    assert "spending_limits" in text(bad)
    # Every limit the card has is a row of the form; a blank row adds one.
    form = browser.get("/app/cards").text
    assert form.count('name="limit_amount"') == 1 + 2  # the issue form's, the card's and a blank
    both = browser.client.post(
        f"/app/cards/{card['id']}/limits",
        data={
            "csrf": browser.csrf("/app/cards"),
            "limit_amount": ["500.00", "75"],
            "limit_interval": ["monthly", "daily"],
        },
    )
    assert both.status_code == 303
    card = client.get(f"/cards/{card['id']}", headers=admin.headers).json()
    assert card["spending_limits"] == [
        {"amount": "500.00", "interval": "monthly"},
        {"amount": "75.00", "interval": "daily"},
    ]
    assert browser.get("/app/cards").text.count('name="limit_amount"') == 1 + 3
    only_daily = browser.client.post(
        f"/app/cards/{card['id']}/limits",
        data={
            "csrf": browser.csrf("/app/cards"),
            "limit_amount": ["", "75", ""],
            "limit_interval": ["monthly", "daily", "monthly"],
        },
    )
    assert only_daily.status_code == 303
    card = client.get(f"/cards/{card['id']}", headers=admin.headers).json()
    assert card["spending_limits"] == [{"amount": "75.00", "interval": "daily"}]

    mine = text(signed_in(app, holder.email).get("/app/cards"))
    assert f"•••• {card['last4']}" in mine
    assert "$75.00 daily" in mine
    assert "frozen" in mine
    assert "Issue a card" not in mine
    assert (
        signed_in(app, holder.email)
        .post(f"/app/cards/{card['id']}/status", {"to": "unfreeze"})
        .status_code
        == 403
    )


def test_admin_users_teams_and_the_policy_editor(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    browser = signed_in(app, admin.email)
    added = browser.post(
        "/app/admin/users",
        {"email": "new.person@example.com", "full_name": "New Person", "role": "manager"},
    )
    assert added.status_code == 303
    taken = browser.post(
        "/app/admin/users", {"email": "new.person@example.com", "full_name": "Again"}
    )
    assert taken.status_code == 409
    assert "Again" in taken.text
    person = next(
        u
        for u in client.get("/admin/users", headers=admin.headers).json()["items"]
        if u["email"] == "new.person@example.com"
    )
    demoted = browser.post(f"/app/admin/users/{person['id']}", {"role": "employee"})
    assert demoted.status_code == 303
    person = client.get(f"/admin/users/{person['id']}", headers=admin.headers).json()
    assert (person["role"], person["is_active"]) == ("employee", False)
    restored = browser.post(
        f"/app/admin/users/{person['id']}", {"role": "manager", "is_active": "1"}
    )
    assert restored.status_code == 303
    assert client.get(f"/admin/users/{person['id']}", headers=admin.headers).json()["is_active"]
    self_edit = browser.get("/app/admin/users").text
    assert f'action="/app/admin/users/{admin.id}"' not in self_edit  # not one's own access
    assert (
        browser.post("/app/admin/teams", {"name": "Sales", "manager_id": person["id"]}).status_code
        == 303
    )
    team = client.get("/teams", headers=admin.headers).json()["items"][0]
    assert (
        browser.post(
            f"/app/admin/teams/{team['id']}/members", {"user_id": person["id"]}
        ).status_code
        == 303
    )
    assert client.get(f"/teams/{team['id']}", headers=admin.headers).json()["member_ids"] == [
        person["id"]
    ]

    not_json = browser.post(
        "/app/admin/policies/save", {"name": "P", "rules": "[{", "action": "save"}
    )
    assert not_json.status_code == 422
    assert "not valid JSON (line 1, column 3)" in text(not_json)
    invalid = browser.post(
        "/app/admin/policies/save",
        {"name": "P", "rules": '[{"action": {"type": "teleport"}}]', "action": "save"},
    )
    assert invalid.status_code == 422
    assert "teleport" in invalid.text
    assert "action" in text(invalid)
    saved = browser.post(
        "/app/admin/policies/save",
        {
            "name": "Over 100",
            "is_active": "1",
            "action": "save",
            "rules": '[{"condition": {"amount_gt": 100}, "action": {"type": "flag", "flag": "big"}}]',
        },
    )
    assert saved.status_code == 303, text(saved)
    policy = client.get("/policies", headers=admin.headers).json()["items"][0]
    assert (policy["name"], policy["is_active"]) == ("Over 100", True)
    assert "Over 100" in text(browser.get("/app/admin/policies"))
    editor = browser.get(f"/app/admin/policies/{policy['id']}")
    assert "amount_gt" in editor.text


def test_notifications_open_and_read(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, MANAGER_APPROVES)
    spend = submit(client, employee, "30.00", "Dinner")
    browser = signed_in(app, manager.email)
    page = browser.get("/app/notifications")
    assert "new" in text(page)
    assert 'aria-label="1 unread"' in page.text
    note = client.get("/notifications", headers=manager.headers).json()["items"][0]
    opened = browser.post(f"/app/notifications/{note['id']}/read", {"then": "/app/approvals"})
    assert opened.headers["location"] == "/app/approvals"
    assert (
        client.get("/notifications?unread_only=true", headers=manager.headers).json()["total"] == 0
    )
    elsewhere = browser.post(
        f"/app/notifications/{note['id']}/read", {"then": "https://evil.example/"}
    )
    assert elsewhere.headers["location"] == "/app/notifications"
    assert spend["status"] == "pending"


def test_a_receipt_added_to_a_spend_later(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    spend = submit(client, employee, "8.37", "Coffee")
    browser = signed_in(app, employee.email)
    page = browser.get(f"/app/spends/{spend['id']}")
    assert "Add the receipt" in text(page)
    token = browser.csrf(f"/app/spends/{spend['id']}")
    bad = browser.client.post(
        f"/app/spends/{spend['id']}/receipt",
        data={"csrf": token},
        files={"file": ("receipt.exe", b"MZ" + b"\0" * 100, "application/pdf")},
    )
    assert bad.status_code == 415
    assert "Coffee" in text(bad)  # the spend's page, saying why
    good = browser.client.post(
        f"/app/spends/{spend['id']}/receipt",
        data={"csrf": token},
        files={"file": ("receipt.pdf", pdf_receipt(), "application/pdf")},
    )
    assert good.status_code == 303
    held = client.get(f"/spends/{spend['id']}", headers=employee.headers).json()["receipts"]
    assert len(held) == 1
    assert "Another receipt" in text(browser.get(f"/app/spends/{spend['id']}"))


def test_a_receipt_matched_meanwhile_leaves_the_spend_and_says_so(
    app: FastAPI, client: TestClient
) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    alone = client.post(
        "/receipts",
        files={"file": ("r.pdf", pdf_receipt(), "application/pdf")},
        headers=employee.headers,
    ).json()
    other = submit(client, employee, "5.00", "Other")
    matched = client.post(
        f"/receipts/{alone['id']}/match", json={"spend_id": other["id"]}, headers=employee.headers
    )
    assert matched.status_code == 200, matched.text
    browser = signed_in(app, employee.email)
    sent = browser.post(
        "/app/spends/new",
        {
            "amount": "8.37",
            "currency": "USD",
            "spend_date": "2026-11-20",
            "receipt_id": alone["id"],
        },
    )
    assert sent.status_code == 200  # the new spend's page, saying why the receipt is not on it
    assert "Submitted: the policies decided" in text(sent)
    assert "The receipt could not be attached: The receipt is attached to a spend already" in (
        text(sent)
    )
    assert client.get("/spends", headers=employee.headers).json()["total"] == 2


def test_a_receipt_sent_with_the_form_and_refused_leaves_the_spend_and_says_why(
    app: FastAPI, client: TestClient
) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    browser = signed_in(app, employee.email)
    sent = browser.post(
        "/app/spends/new",
        {"amount": "8.37", "currency": "USD", "spend_date": "2026-11-20", "description": "Tea"},
        files={"receipt": ("receipt.pdf", b"MZ" + b"\0" * 100, "application/pdf")},
    )
    assert sent.status_code == 200
    assert "Tea" in text(sent)
    assert "The receipt could not be attached" in text(sent)
    spends = client.get("/spends", headers=employee.headers).json()["items"]
    assert [(s["description"], s["receipts"]) for s in spends] == [("Tea", [])]


def test_settings_locale_notifications_and_password(app: FastAPI, client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    submit(client, employee, "1234.50", "Laptop stand")
    browser = signed_in(app, employee.email, **{"Accept-Language": "en-US"})
    page = browser.get("/app/settings")
    assert "My browser's language" in text(page)
    assert "Deutsch (Deutschland)" not in text(page)  # names in the person's own language
    assert "German (Germany)" in text(page)

    kinds = client.get("/users/me/notification-preferences", headers=employee.headers).json()
    ticked = {f"{kind}:{c}": "on" for kind, chosen in kinds["channels"].items() for c in chosen}
    ticked.pop("spend.approved:email")
    saved = browser.post(
        "/app/settings/notifications", {**ticked, "locale": "de_DE", "digest": "weekly"}
    )
    assert saved.status_code == 303
    prefs = client.get("/users/me/notification-preferences", headers=employee.headers).json()
    assert prefs["locale"] == "de_DE"
    assert prefs["digest"] == "weekly"
    assert prefs["channels"]["spend.approved"] == ["in_app"]
    assert {k: v for k, v in prefs["channels"].items() if k != "spend.approved"} == {
        k: v for k, v in kinds["channels"].items() if k != "spend.approved"
    }
    assert "1.234,50 $" in text(browser.get("/app/spends"))  # the chosen locale, not en-US

    wrong = browser.post(
        "/app/settings/profile",
        {"full_name": "Eve", "current_password": "nope", "new_password": "a new long password"},
    )
    assert wrong.status_code in (400, 401)
    right = browser.post(
        "/app/settings/profile",
        {
            "full_name": "Eve Employee",
            "current_password": "correct horse battery staple",
            "new_password": "a new long password",
        },
    )
    assert right.status_code == 303, text(right)
    assert "Eve Employee" in text(browser.get("/app/settings"))  # still signed in here
    assert (
        client.post(
            "/auth/login", json={"email": employee.email, "password": "a new long password"}
        ).status_code
        == 200
    )


def test_the_inbox_reads_its_spends_in_a_few_calls(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full inbox is reloaded after every decision, and each of its API calls counts against
    the approver's rate limit: the spends come in one page, not one call each."""
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, MANAGER_APPROVES)
    for i in range(30):
        submit(client, employee, "20.00", f"Spend {i}")
    browser = signed_in(app, manager.email)
    calls: list[str] = []
    real = Api.raw

    async def counted(self: Api, method: str, path: str, **kwargs: Any) -> Any:
        calls.append(f"{method} {path}")
        return await real(self, method, path, **kwargs)

    monkeypatch.setattr(Api, "raw", counted)
    inbox = browser.get("/app/approvals")
    assert "30 waiting" in text(inbox)
    assert inbox.text.count("data-approval=") == 30
    assert len(calls) <= 8, calls
