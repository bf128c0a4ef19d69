"""The web app end to end in a real browser: an employee drops a receipt on the new-spend form
and submits it with what OCR read, the manager approves it from the inbox with the keyboard,
finance finds it on the dashboard and exports the month. Every page is checked with axe-core
(no WCAG A/AA violation), under its CSP (no console error) and without leaving loopback; each
page's screenshot and weight are kept under BROWSER_ARTIFACTS (default `.artifacts/browser`)."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LOOPBACK, Watched
from tests.factories import PASSWORD, unique_email
from tests.receipts import image_receipt

ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ".artifacts/browser"))
AXE = Axe()
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


@pytest.fixture(scope="module")
def company(live_server: str) -> dict[str, Any]:
    """A company with a manager, their report, finance, a category, and a policy that sends
    spends over 5 to the manager, all made through the API."""
    api = httpx.Client(base_url=live_server, timeout=30)
    admin_email = unique_email("web-admin")
    signup = api.post(
        "/auth/signup",
        json={
            "company_name": "Web Co",
            "email": admin_email,
            "password": PASSWORD,
            "full_name": "Ada Admin",
            "starter_workspace": False,
        },
    )
    assert signup.status_code == 201, signup.text
    admin = {"Authorization": f"Bearer {signup.json()['access_token']}"}

    def user(role: str, name: str, manager_id: str | None = None) -> dict[str, Any]:
        body = {"email": unique_email(role), "full_name": name, "role": role, "password": PASSWORD}
        if manager_id:
            body["manager_id"] = manager_id
        created = api.post("/admin/users", json=body, headers=admin)
        assert created.status_code == 201, created.text
        return dict(created.json())

    manager = user("manager", "Maya Manager")
    employee = user("employee", "Eli Employee", manager_id=manager["id"])
    finance = user("finance", "Fiona Finance")
    category = api.post("/categories", json={"name": "Meals"}, headers=admin).json()
    budget = api.post(
        "/budgets",
        json={
            "name": "Meals 2026",
            "category_id": category["id"],
            "period": "yearly",
            "amount": "1000",
            "mode": "soft",
        },
        headers=admin,
    )
    assert budget.status_code == 201, budget.text
    policy = api.post(
        "/policies",
        json={
            "name": "Manager approves",
            "rules": [
                {
                    "condition": {"amount_gt": 5},
                    "action": {"type": "require_approval", "approver": "manager"},
                }
            ],
        },
        headers=admin,
    )
    assert policy.status_code == 201, policy.text
    return {
        "admin": admin_email,
        "manager": manager["email"],
        "employee": employee["email"],
        "finance": finance["email"],
        "category": category["name"],
    }


@pytest.fixture(scope="module")
def weights() -> Iterator[dict[str, int]]:
    found: dict[str, int] = {}
    yield found
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "page-weights.json").write_text(json.dumps(found, indent=2) + "\n")


def employee_submits(
    base: str, company: dict[str, Any], amount: str, description: str
) -> dict[str, Any]:
    """A spend the employee sends through the API (not the page under test)."""
    api = httpx.Client(base_url=base, timeout=30)
    login = api.post("/auth/login", json={"email": company["employee"], "password": PASSWORD})
    spend = api.post(
        "/spends",
        json={
            "amount": amount,
            "currency": "USD",
            "spend_date": "2026-11-21",
            "description": description,
        },
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    assert spend.status_code == 201, spend.text
    return dict(spend.json())


def sign_in(
    browser: Browser, base: str, email: str, weights: dict[str, int] | None = None
) -> Watched:
    context = browser.new_context(locale="en-US", accept_downloads=True)
    page = context.new_page()
    seen = Watched(page)
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if httpx.URL(route.request.url).host in LOOPBACK
            else (seen.outside.append(route.request.url), route.abort())
        ),
    )
    page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.errors.append(str(e)))
    page.goto(f"{base}/app/login")
    if weights is not None:  # the sign-in page itself, once
        check_page(seen, "00-sign-in", weights)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return seen


def check_page(seen: Watched, name: str, weights: dict[str, int]) -> None:
    """axe-core finds no WCAG 2.1 A/AA violation; nothing broke the CSP or left loopback; the
    page is kept as a screenshot, and its first load's weight is measured."""
    page = seen.page
    page.wait_for_load_state("networkidle")
    results = AXE.run(page, options=WCAG)
    violations = [
        f"{v['id']}: {v['help']} ({[n['target'] for n in v['nodes']][:3]})"
        for v in results.response["violations"]
    ]
    assert violations == [], f"{name}: {violations}"
    assert seen.errors == [], f"{name}: {seen.errors}"
    assert seen.outside == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    weights[name] = first_load_bytes(page)


def first_load_bytes(page: Page) -> int:
    """Bytes over the wire to load the current URL in a fresh cache: document and assets."""
    client = page.context.new_cdp_session(page)
    client.send("Network.enable")
    client.send("Network.setCacheDisabled", {"cacheDisabled": True})
    total = 0

    def count(event: dict[str, Any]) -> None:
        nonlocal total
        total += int(event.get("encodedDataLength", 0))

    client.on("Network.loadingFinished", count)
    page.reload(wait_until="networkidle")
    client.send("Network.setCacheDisabled", {"cacheDisabled": False})
    client.detach()
    return total


def test_submit_with_receipt_approve_and_export(
    browser: Browser, live_server: str, company: dict[str, Any], weights: dict[str, int]
) -> None:
    # The employee drops a receipt on the form; OCR reads it; they take its values.
    employee = sign_in(browser, live_server, company["employee"], weights)
    page = employee.page
    page.goto(f"{live_server}/app/spends/new")
    check_page(employee, "01-new-spend", weights)
    receipt = base64.b64encode(image_receipt()).decode()
    dropped = page.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], "receipt.png", {type: "image/png"}));
            return data;
        }""",
        receipt,
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})
    expect(page.get_by_role("img", name="Preview of receipt.png")).to_be_visible()
    use = page.get_by_role("button", name="Use these values")
    expect(use).to_be_visible(timeout=30_000)
    expect(page.locator("#ocr")).to_contain_text("Blue Bottle Coffee")
    assert page.get_by_label("Amount").input_value() == ""  # nothing filled until asked
    use.click()
    expect(page.get_by_label("Amount")).to_have_value("8.37")
    expect(page.get_by_label("Date")).to_have_value("2026-11-20")
    expect(page.get_by_label("Description")).to_have_value("Blue Bottle Coffee")
    page.get_by_label("Category").select_option(label=company["category"])
    page.get_by_role("button", name="Submit spend").click()
    expect(page.get_by_role("status")).to_contain_text("pending")
    expect(page.get_by_role("img", name="Receipt for Blue Bottle Coffee")).to_be_visible()
    expect(page.locator("ol.trail")).to_contain_text("Maya Manager")
    spend_url = page.url.split("?")[0]
    check_page(employee, "02-spend-pending", weights)
    page.goto(f"{live_server}/app/spends")
    expect(page.get_by_role("link", name="Blue Bottle Coffee")).to_be_visible()
    check_page(employee, "03-my-spends", weights)

    # Another spend, sent by the API, waits beside it.
    employee_submits(live_server, company, "30.00", "Taxi home")

    # The manager decides both from the inbox with the keyboard alone.
    manager = sign_in(browser, live_server, company["manager"])
    page = manager.page
    page.goto(f"{live_server}/app/approvals")
    expect(page.locator("tr[data-approval]")).to_have_count(2)
    row = page.locator("tr[data-approval]", has_text="Blue Bottle Coffee")
    expect(row).to_contain_text("Eli Employee")
    expect(row).to_contain_text("$8.37")
    check_page(manager, "04-approvals-inbox", weights)
    page.locator("tr[data-approval]", has_text="Taxi home").focus()
    page.keyboard.press("r")  # to the comment; Enter rejects with it
    expect(page.get_by_label("Comment").first).to_be_focused()
    page.keyboard.type("Personal trip")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Rejected")
    expect(page.locator("tr[data-approval]")).to_have_count(1)
    expect(page.locator("tr[data-approval]")).to_be_focused()  # the next one has the focus
    page.keyboard.press("a")
    expect(page.get_by_role("status")).to_contain_text("Approved")
    expect(page.get_by_text("Nothing waiting for you.")).to_be_visible()

    # The employee sees the decision in the trail.
    page = employee.page
    page.goto(spend_url)
    expect(page.locator(".head .status")).to_have_text("approved")
    expect(page.locator("ol.trail")).to_contain_text("approved by Maya Manager")
    check_page(employee, "05-spend-approved", weights)

    # Finance sees it on November's dashboard and exports the month.
    finance = sign_in(browser, live_server, company["finance"])
    page = finance.page
    page.goto(f"{live_server}/app/dashboard?month=2026-11")
    expect(page.locator(".stat").first).to_have_text("$8.37")
    expect(page.get_by_role("img", name="Spend by category, Nov 2026")).to_contain_text("Meals")
    expect(page.locator("#vendors").locator("..")).to_contain_text("No spends with a vendor")
    budgets = page.locator("#budgets").locator("..")
    expect(budgets).to_contain_text("Meals 2026")
    expect(budgets).to_contain_text("$8.37")  # used of $1,000.00 this year
    expect(budgets).to_contain_text("$991.63")  # left
    check_page(finance, "06-dashboard", weights)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export Nov 2026").click()
    assert download.value.suggested_filename == "spendtrackr-2026-11-journal.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows, "the export holds the month's journal lines"
    ours = [r for r in rows if r["description"] == "Blue Bottle Coffee"]
    # Balanced: 7.75 of expense and the 0.62 of tax the receipt showed, against 8.37 owed.
    assert sum(Decimal(r["debit"]) for r in ours) == Decimal("8.37"), rows
    assert sum(Decimal(r["credit"]) for r in ours) == Decimal("8.37"), rows
    assert {r["debit"] for r in ours} >= {"7.75", "0.62"}, rows

    for seen in (employee, manager, finance):
        seen.page.context.close()


def test_every_other_page_is_accessible_and_works_on_a_phone(
    browser: Browser, live_server: str, company: dict[str, Any], weights: dict[str, int]
) -> None:
    spend = employee_submits(live_server, company, "20.00", "Team lunch")

    admin = sign_in(browser, live_server, company["admin"])
    page = admin.page
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    for name, path in (
        ("07-phone-spends", "/app/spends?everyone=1"),
        ("07-phone-spend", f"/app/spends/{spend['id']}"),
        ("07-phone-new-spend", "/app/spends/new"),
        ("07-phone-approvals", "/app/approvals"),
        ("07-phone-dashboard", "/app/dashboard?month=2026-11"),
        ("07-cards", "/app/cards"),
        ("08-admin-users", "/app/admin/users"),
        ("09-admin-policies", "/app/admin/policies"),
        ("10-notifications", "/app/notifications"),
        ("10-settings", "/app/settings"),
    ):
        page.goto(f"{live_server}{path}")
        check_page(admin, name, weights)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} scrolls sideways on a phone ({width}px)"

    # The rule editor shows the API's own validation error, then a dry run of a valid draft.
    page.goto(f"{live_server}/app/admin/policies/new")
    page.get_by_label("Name").fill("Big spends")
    page.get_by_label("Rules (JSON)").fill('[{"condition": {"amount_gt": -1}, "action": {}}]')
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_role("alert")).to_contain_text("amount_gt")
    # The page came back 422, as the API answered; the browser logs that status, nothing else.
    assert [e for e in admin.errors if "422" not in e] == []
    admin.errors.clear()
    page.get_by_label("Rules (JSON)").fill(
        '[{"condition": {"amount_gt": 1}, "action": {"type": "block", "reason": "No"}}]'
    )
    page.get_by_role("button", name="Try on recent spends").click()
    result = page.locator("#dry-run-result")
    lunch = result.locator("tr", has_text="Team lunch")
    expect(lunch).to_contain_text("pending")  # what it got at submission
    expect(lunch).to_contain_text("blocked")  # what the draft would do
    expect(lunch).to_contain_text("changed")
    check_page(admin, "11-policy-dry-run", weights)
    page.close()
