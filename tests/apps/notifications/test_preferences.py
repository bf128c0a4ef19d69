"""Where notifications reach each person: their preferences, the company's defaults, and the
one-click unsubscribe link of every email that may be turned off (RFC 8058)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.notifications import flows
from spendtrackr.core.config import Settings
from tests.apps.notifications.test_email import (  # the SMTP server and settings of the suite
    Mailbox,
    emailing,
    mailbox,
    smtp_settings,
)
from tests.factories import approval_over, create_policy, create_user, signup, submit_spend
from tests.statements import statements_sent

__all__ = ["emailing", "mailbox", "smtp_settings"]


def kinds(client: TestClient, headers: dict[str, str]) -> list[str]:
    return [n["kind"] for n in client.get("/notifications", headers=headers).json()["items"]]


def test_preferences_default_to_both_and_change_per_kind(client: TestClient) -> None:
    admin = signup(client)
    employee = create_user(client, admin)
    mine = client.get("/users/me/notification-preferences", headers=employee.headers).json()
    assert mine["digest"] == "weekly"
    assert mine["channels"]["spend.approved"] == ["email", "in_app"]
    changed = client.put(
        "/users/me/notification-preferences",
        json={"channels": {"spend.approved": ["in_app"], "user.invited": []}, "digest": "off"},
        headers=employee.headers,
    ).json()
    assert changed["channels"]["spend.approved"] == ["in_app"]
    assert changed["channels"]["user.invited"] == ["email"]  # always emailed
    assert changed["digest"] == "off"
    assert changed["channels"]["spend.rejected"] == ["email", "in_app"]  # untouched
    for bad in (
        {"channels": {"spend.exploded": ["email"]}},
        {"channels": {"spend.approved": ["sms"]}},
        {"digest": "hourly"},
    ):
        response = client.put(
            "/users/me/notification-preferences", json=bad, headers=employee.headers
        )
        assert response.status_code == 422, bad


def test_a_person_and_the_company_choose_what_is_emailed(
    client: TestClient,
    emailing: sessionmaker[Session],
    smtp_settings: Settings,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, _ = mailbox
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    # The company: approval requests in the app only. The employee: approvals by email only.
    assert (
        client.put(
            "/companies/me/notification-defaults",
            json={"channels": {"approval.requested": ["in_app"]}},
            headers=admin.headers,
        ).status_code
        == 200
    )
    assert (
        client.put(
            "/companies/me/notification-defaults", json={}, headers=employee.headers
        ).status_code
        == 403
    )
    client.put(
        "/users/me/notification-preferences",
        json={"channels": {"spend.approved": ["email"]}},
        headers=employee.headers,
    )
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    spend = submit_spend(client, employee, amount="500.00")
    step = spend["approvals"][0]["id"]
    client.post(f"/approvals/{step}/decision", json={"approved": True}, headers=manager.headers)
    flows.send_emails(emailing, settings=smtp_settings)
    assert box.to(manager.email) == []  # the company's default
    assert kinds(client, manager.headers) == ["approval.requested"]
    assert [m["Subject"] for m in box.to(employee.email)] == [
        "[Acme] Your spend of $500.00 was approved"
    ]
    assert "spend.approved" not in kinds(client, employee.headers)  # email only


def test_one_click_unsubscribe_stops_one_kind_of_email(
    client: TestClient,
    emailing: sessionmaker[Session],
    smtp_settings: Settings,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, _ = mailbox
    admin = signup(client)
    employee = create_user(client, admin)
    submit_spend(client, employee, amount="10.00")
    spend = submit_spend(client, employee, amount="11.00")
    client.post(f"/spends/{spend['id']}/reimburse", headers=admin.headers)
    flows.send_emails(emailing, settings=smtp_settings)
    (message,) = box.to(employee.email)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://spend.example.com/notifications/unsubscribe?token=")
    target = urlsplit(link)
    path = f"{target.path}?{target.query}"

    page = client.get(path)
    assert page.status_code == 200
    assert '<form method="post"' in page.text
    assert kinds(client, employee.headers) == ["spend.reimbursed"]  # a GET changed nothing

    # what a mail client sends (RFC 8058), without any login
    done = client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"status": "unsubscribed", "kind": "spend.reimbursed"}
    prefs = client.get("/users/me/notification-preferences", headers=employee.headers).json()
    assert prefs["channels"]["spend.reimbursed"] == ["in_app"]

    other = submit_spend(client, employee, amount="12.00")
    client.post(f"/spends/{other['id']}/reimburse", headers=admin.headers)
    flows.send_emails(emailing, settings=smtp_settings)
    assert len(box.to(employee.email)) == 1  # no second email
    assert kinds(client, employee.headers) == ["spend.reimbursed", "spend.reimbursed"]

    forged = client.post(path.replace("token=", "token=x"))
    assert (forged.status_code, forged.json()["code"]) == (404, "invalid_unsubscribe_link")


def test_a_notification_reads_the_choices_and_the_defaults_in_one_statement(
    client: TestClient,
) -> None:
    """The people's preferences and the company's defaults come in one round trip: a pending
    submission notifies its approver with one statement about them, whoever chose what."""
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    client.put(
        "/companies/me/notification-defaults",
        json={"channels": {"approval.requested": ["in_app"]}},
        headers=admin.headers,
    )
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    with statements_sent(
        lambda s: "notification_preference" in s or "notification_default" in s
    ) as sent:
        spend = submit_spend(client, employee, amount="500.00")
    assert spend["status"] == "pending"
    assert len(sent) == 1
    assert "notification_preference" in sent[0]
    assert "notification_default" in sent[0]
    assert kinds(client, manager.headers) == ["approval.requested"]
