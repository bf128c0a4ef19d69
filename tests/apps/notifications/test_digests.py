"""Digests for approvers and finance, each person's email locale, and one worker at a time."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.notifications import flows
from spendtrackr.core import leases
from spendtrackr.core.config import Settings
from spendtrackr.core.db import session_scope, utcnow
from tests.apps.notifications.test_email import Mailbox, body, emailing, mailbox, smtp_settings
from tests.factories import approval_over, create_policy, create_user, signup, submit_spend

__all__ = ["emailing", "mailbox", "smtp_settings"]


def test_approvers_and_finance_get_their_digest_once_a_period(
    client: TestClient,
    emailing: sessionmaker[Session],
    smtp_settings: Settings,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, _ = mailbox
    now = utcnow()
    flows.send_digests(emailing, settings=smtp_settings, now=now)  # other tests' people first
    while flows.send_emails(emailing, settings=smtp_settings):  # a batch at a time
        pass
    box.messages.clear()

    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin, manager_id=manager.id)
    client.put(
        "/users/me/notification-preferences", json={"digest": "daily"}, headers=manager.headers
    )
    client.put("/users/me/notification-preferences", json={"digest": "off"}, headers=admin.headers)
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    submit_spend(client, employee, amount="300.00")
    submit_spend(client, employee, amount="20.00")

    later = now + timedelta(hours=1)
    assert flows.send_digests(emailing, settings=smtp_settings, now=later) >= 2
    while flows.send_emails(emailing, settings=smtp_settings, now=later):
        pass
    (to_manager,) = [m for m in box.to(manager.email) if "digest" in m["Subject"]]
    assert "1 approval waits for you" in body(to_manager, "plain")
    (to_finance,) = [m for m in box.to(finance.email) if "digest" in m["Subject"]]
    assert "2 spends submitted this week; 1 pending; 1 approved and not yet reimbursed" in body(
        to_finance, "plain"
    )
    assert box.to(admin.email) == []  # turned off
    assert box.to(employee.email) == []  # not an approver
    in_app = client.get("/notifications", headers=manager.headers).json()["items"]
    assert "digest" not in [n["kind"] for n in in_app]  # an email, not an in-app notice

    # The same period again: nothing; the next day: the daily one only.
    box.messages.clear()
    assert flows.send_digests(emailing, settings=smtp_settings, now=later + timedelta(hours=2)) == 0
    flows.send_digests(emailing, settings=smtp_settings, now=later + timedelta(days=1, hours=1))
    flows.send_emails(emailing, settings=smtp_settings, now=later + timedelta(days=1, hours=1))
    assert len(box.to(manager.email)) == 1
    assert box.to(finance.email) == []


def test_a_person_reads_amounts_in_their_own_locale(
    client: TestClient,
    emailing: sessionmaker[Session],
    smtp_settings: Settings,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, _ = mailbox
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    saved = client.put(
        "/users/me/notification-preferences", json={"locale": "de-DE"}, headers=manager.headers
    )
    assert saved.json()["locale"] == "de_DE"
    bad = client.put(
        "/users/me/notification-preferences", json={"locale": "xx_YY"}, headers=manager.headers
    )
    assert bad.status_code == 422
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    submit_spend(client, employee, amount="1234.50")
    flows.send_emails(emailing, settings=smtp_settings)
    (message,) = box.to(manager.email)
    assert message["Subject"] == "[Acme] Approval requested: 1.234,50\xa0$"
    assert "20. November 2026" in body(message, "plain")


def test_a_scheduled_job_runs_on_one_worker_at_a_time(emailing: sessionmaker[Session]) -> None:
    now = utcnow()
    ttl = timedelta(minutes=10)
    with session_scope(emailing) as session:
        assert leases.acquire(session, name="test.job", holder="a", now=now, ttl=ttl)
    with session_scope(emailing) as session:
        assert not leases.acquire(session, name="test.job", holder="b", now=now, ttl=ttl)
        assert leases.acquire(session, name="test.job", holder="a", now=now, ttl=ttl)  # renewed
    with session_scope(emailing) as session:
        # "a" died: its lease runs out, "b" takes it
        assert leases.acquire(session, name="test.job", holder="b", now=now + ttl * 2, ttl=ttl)
        leases.release(session, name="test.job", holder="b", now=now + ttl * 2)
