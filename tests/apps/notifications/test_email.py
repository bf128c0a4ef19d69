"""Notifications by email, through a real SMTP server in the test (aiosmtpd): queued in the
transaction of the change, sent by the worker, each attempt recorded, nothing lost or sent
twice when the server goes away mid-batch."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.notifications import flows
from spendtrackr.apps.notifications import service as notifications
from spendtrackr.apps.notifications.models import EmailAttempt, EmailStatus, Notification
from spendtrackr.core.config import Settings
from spendtrackr.core.db import utcnow
from spendtrackr.sessions import session_factory
from tests.factories import PASSWORD, Actor, approval_over, create_policy, create_user, signup

PUBLIC_URL = "https://spend.example.com"


@dataclass
class Mailbox:
    """What the SMTP server accepted; `refuse_after` makes it answer 421 and hang up."""

    messages: list[Message] = field(default_factory=list)
    refuse_after: int | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_after is not None and len(self.messages) >= self.refuse_after:
            return "421 Service not available, closing transmission channel"
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailer", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box = Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def smtp_settings(settings: Settings, mailbox: tuple[Mailbox, int]) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": mailbox[1],
            "smtp_tls": "none",
            "smtp_username": "mailer",
            "smtp_password": settings.jwt_secret.__class__("s3cret"),
            "email_from": "SpendTrackr <no-reply@spend.example.com>",
            "public_url": PUBLIC_URL,
        }
    )


@pytest.fixture
def emailing(app: FastAPI, smtp_settings: Settings) -> Iterator[sessionmaker[Session]]:
    """The application's sessions queue emails while the test runs (SMTP configured)."""
    original = app.state.session_factory
    factory = session_factory(app.state.engine, smtp_settings)
    app.state.session_factory = factory
    forget_pending(factory)
    yield factory
    app.state.session_factory = original


def forget_pending(factory: sessionmaker[Session]) -> None:
    """Emails other tests queued are not this test's to send (a worker run serves everyone)."""
    with factory.begin() as session:
        for row in session.scalars(
            select(Notification).where(Notification.email_status == EmailStatus.pending)
        ):
            row.email_status = EmailStatus.failed


def body(message: Message, subtype: str) -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/{subtype} part")


def test_an_approval_goes_by_email_and_its_links_work(
    client: TestClient,
    emailing: sessionmaker[Session],
    smtp_settings: Settings,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, _ = mailbox
    admin = signup(client, company_name="Acme & Sons")
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(100, "manager", 10)])
    spend = client.post(
        "/spends",
        json={
            "amount": "1500.00",
            "currency": "USD",
            "spend_date": "2026-11-20",
            "description": "Conference <keynote>",
        },
        headers=employee.headers,
    ).json()
    assert spend["status"] == "pending"
    assert box.messages == []  # queued with the spend, sent by the worker

    assert flows.send_emails(emailing, settings=smtp_settings) == 1
    (message,) = box.to(manager.email)
    assert message["From"] == "SpendTrackr <no-reply@spend.example.com>"
    assert message["Subject"] == "[Acme & Sons] Approval requested: $1,500.00"
    assert message["Message-ID"].endswith("@spend.example.com>")
    text, html = body(message, "plain"), body(message, "html")
    assert "A employee asks for your approval of $1,500.00: Conference <keynote>." in text
    assert "November 20, 2026" in text
    assert "Conference &lt;keynote&gt;" in html  # escaped in HTML
    link = f"{PUBLIC_URL}/spends/{spend['id']}"
    assert link in text
    assert f'href="{link}"' in html
    # the link's path is the API's own
    path = link.removeprefix(PUBLIC_URL)
    assert client.get(path, headers=manager.headers).json()["id"] == spend["id"]

    step = spend["approvals"][0]["id"]
    client.post(f"/approvals/{step}/decision", json={"approved": True}, headers=manager.headers)
    assert flows.send_emails(emailing, settings=smtp_settings) == 1
    (approved,) = box.to(employee.email)
    assert approved["Subject"] == "[Acme & Sons] Your spend of $1,500.00 was approved"
    assert flows.send_emails(emailing, settings=smtp_settings) == 0  # nothing twice


def test_an_invite_is_emailed_with_a_link_that_sets_the_password(
    client: TestClient,
    emailing: sessionmaker[Session],
    smtp_settings: Settings,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, _ = mailbox
    admin = signup(client)
    invited = client.post(
        "/admin/users",
        json={"email": "newcomer@example.com", "full_name": "Nia Newcomer", "role": "employee"},
        headers=admin.headers,
    )
    assert invited.status_code == 201, invited.text
    flows.send_emails(emailing, settings=smtp_settings)
    (message,) = box.to("newcomer@example.com")
    text = body(message, "plain")
    found = re.search(re.escape(PUBLIC_URL) + r"/accept-invite\?token=([\w-]+)", text)
    assert found, text
    accepted = client.post(
        "/auth/accept-invite", json={"token": found.group(1), "password": PASSWORD}
    )
    assert accepted.status_code == 200, accepted.text
    assert (
        client.post(
            "/auth/login", json={"email": "newcomer@example.com", "password": PASSWORD}
        ).status_code
        == 200
    )
    # once sent, the token is no longer kept with the notification
    with emailing() as session:
        row = session.scalars(
            select(Notification)
            .where(Notification.kind == "user.invited")
            .order_by(Notification.created_at.desc())
        ).first()
        assert row is not None
        assert row.email_status is EmailStatus.sent
        assert "private_link" not in (row.email_context or {})


def test_a_server_gone_mid_batch_loses_nothing_and_sends_nothing_twice(
    client: TestClient,
    emailing: sessionmaker[Session],
    smtp_settings: Settings,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, _ = mailbox
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    employee = create_user(client, admin, manager_id=manager.id)
    create_policy(client, admin, [approval_over(0, "manager", 10)])
    for i in range(6):
        client.post(
            "/spends",
            json={"amount": f"{10 + i}.00", "currency": "USD", "spend_date": "2026-11-20"},
            headers=employee.headers,
        )
    box.refuse_after = 2  # then 421, and the connection is gone
    now = utcnow()
    assert flows.send_emails(emailing, settings=smtp_settings, now=now) == 6
    assert len(box.messages) == 2
    with emailing() as session:
        pending = session.scalars(
            select(Notification).where(
                Notification.user_id == _uuid(manager),
                Notification.email_status == EmailStatus.pending,
            )
        ).all()
        assert len(pending) == 4
        assert all(("421" in e or "lost" in e) for e in (n.email_error or "" for n in pending))
        attempts = session.scalars(
            select(EmailAttempt).where(EmailAttempt.notification_id.in_([n.id for n in pending]))
        ).all()
        assert len(attempts) == 4

    box.refuse_after = None  # the server is back
    assert flows.send_emails(emailing, settings=smtp_settings, now=now + timedelta(seconds=5)) == 0
    assert flows.send_emails(emailing, settings=smtp_settings, now=now + timedelta(minutes=1)) == 4
    ids = [m["Message-ID"] for m in box.to(manager.email)]
    assert len(ids) == 6
    assert len(set(ids)) == 6  # each notification's email exactly once


def test_a_server_that_is_down_then_back_gets_every_email_once(
    client: TestClient, app: FastAPI, settings: Settings
) -> None:
    """The SMTP server is stopped outright (connections refused), then started again on the
    same port: nothing was lost, nothing is sent twice."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box = Mailbox()
    smtp = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none"}
    )
    factory = session_factory(app.state.engine, smtp)
    admin = signup(client)
    forget_pending(factory)
    with factory.begin() as session:
        for i in range(3):
            notifications.notify(
                session,
                company_id=_uuid_company(admin),
                user_ids=[_uuid(admin)],
                kind="spend.flagged",
                message=f"down and back {i}",
            )
    now = utcnow()
    assert flows.send_emails(factory, settings=smtp, now=now) == 3  # no server at all
    with factory() as session:
        errors = session.scalars(
            select(Notification.email_error).where(Notification.message.like("down and back %"))
        ).all()
        assert len(errors) == 3
        assert all(e and "unavailable" in e for e in errors)
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert flows.send_emails(factory, settings=smtp, now=now + timedelta(minutes=1)) == 3
        assert flows.send_emails(factory, settings=smtp, now=now + timedelta(hours=1)) == 0
    finally:
        controller.stop()
    assert sorted(m["Subject"] for m in box.messages) == [
        f"[Acme] down and back {i}" for i in range(3)
    ]


def test_a_rolled_back_change_queues_no_email(
    app: FastAPI, smtp_settings: Settings, client: TestClient
) -> None:
    admin = signup(client)
    factory = session_factory(app.state.engine, smtp_settings)
    with factory() as session:
        notifications.notify(
            session,
            company_id=_uuid_company(admin),
            user_ids=[_uuid(admin)],
            kind="spend.flagged",
            message="never sent",
        )
        session.flush()
        session.rollback()
    with factory() as session:
        assert (
            session.scalars(select(Notification).where(Notification.message == "never sent")).all()
            == []
        )


def test_without_smtp_notifications_stay_in_the_app(
    client: TestClient, app: FastAPI, settings: Settings
) -> None:
    admin = signup(client)
    create_user(client, admin)  # nothing to email about; but a spend approval would be
    assert settings.email_enabled is False
    assert flows.send_emails(app.state.session_factory, settings=settings) == 0
    with app.state.session_factory() as session:
        queued = session.scalars(
            select(Notification).where(
                Notification.company_id == _uuid_company(admin),
                Notification.email_status.is_not(None),
            )
        ).all()
        assert queued == []


def _uuid(actor: Actor) -> Any:
    import uuid

    return uuid.UUID(actor.id)


def _uuid_company(actor: Actor) -> Any:
    import uuid

    return uuid.UUID(actor.company_id)


def test_a_declined_purchase_and_a_flagged_spend_reach_their_owner(
    client: TestClient,
    emailing: sessionmaker[Session],
    smtp_settings: Settings,
    mailbox: tuple[Mailbox, int],
) -> None:
    from tests.factories import authorize, issue_card, submit_spend, webhook_secret

    box, _ = mailbox
    admin = signup(client)
    holder = create_user(client, admin)
    card = issue_card(client, admin, holder, [{"amount": "50", "interval": "daily"}])
    authorize(client, webhook_secret(client, admin), card["id"], "80.00", merchant_name="Café Olé")
    client.post(
        "/policies",
        json={
            "name": "Receipts",
            "is_active": True,
            "rules": [
                {
                    "condition": {"receipt_missing": True},
                    "action": {"type": "flag", "flag": "receipt_missing"},
                }
            ],
        },
        headers=admin.headers,
    )
    submit_spend(client, holder, amount="12.00")
    flows.send_emails(emailing, settings=smtp_settings)
    subjects = sorted(m["Subject"] for m in box.to(holder.email))
    assert subjects == [
        "[Acme] A purchase of $80.00 was declined",
        "[Acme] You have a new card",
        "[Acme] Your spend of $12.00 was flagged",
    ]
    declined = next(m for m in box.to(holder.email) if "declined" in m["Subject"])
    assert "Café Olé" in body(declined, "plain")
    flagged = next(m for m in box.to(holder.email) if "flagged" in m["Subject"])
    assert "receipt missing" in body(flagged, "plain")


def _certificate(directory: Any) -> tuple[Any, Any]:
    """A self-signed certificate for 127.0.0.1, and its key, as files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp.pem", directory / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_email_over_tls_with_the_servers_certificate_checked(
    client: TestClient, app: FastAPI, settings: Settings, tmp_path: Any, mode: str
) -> None:
    import ssl

    cert_file, key_file = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box = Mailbox()
    if mode == "starttls":
        controller = Controller(
            box,
            hostname="127.0.0.1",
            port=port,
            tls_context=server_tls,
            require_starttls=True,
            authenticator=_authenticate,
            auth_required=True,
        )
    else:
        controller = Controller(
            box,
            hostname="127.0.0.1",
            port=port,
            ssl_context=server_tls,
            authenticator=_authenticate,
            auth_required=True,
            auth_require_tls=False,
        )
    controller.start()
    try:
        tls_settings = settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_tls": mode,
                "smtp_username": "mailer",
                "smtp_password": settings.jwt_secret.__class__("s3cret"),
                "smtp_ca_file": cert_file,
            }
        )
        factory = session_factory(app.state.engine, tls_settings)
        admin = signup(client)
        forget_pending(factory)
        with factory.begin() as session:
            notifications.notify(
                session,
                company_id=_uuid_company(admin),
                user_ids=[_uuid(admin)],
                kind="spend.flagged",
                message=f"sent over {mode}",
            )
        assert flows.send_emails(factory, settings=tls_settings) == 1
        assert [m["Subject"] for m in box.messages] == [f"[Acme] sent over {mode}"]

        # A certificate the client does not trust: nothing is sent, the attempt says why.
        untrusted = tls_settings.model_copy(update={"smtp_ca_file": None})
        with factory.begin() as session:
            notifications.notify(
                session,
                company_id=_uuid_company(admin),
                user_ids=[_uuid(admin)],
                kind="spend.flagged",
                message=f"never delivered over {mode}",
            )
        flows.send_emails(factory, settings=untrusted)
        assert len(box.messages) == 1
        with factory() as session:
            row = session.scalars(
                select(Notification).where(Notification.message == f"never delivered over {mode}")
            ).one()
            assert row.email_status is EmailStatus.pending
            assert "CERTIFICATE_VERIFY_FAILED" in (row.email_error or "")
    finally:
        controller.stop()


def test_spend_emails_give_the_amount_in_the_readers_locale_and_the_reason() -> None:
    from babel import Locale

    from spendtrackr.apps.notifications import emails

    rendered = emails.render(
        kind="spend.rejected",
        message="Your spend 1250.00 EUR (Dinner) was rejected: no receipt",
        context={"amount": "1250.00", "currency": "EUR", "description": "Dinner"},
        to="em@example.com",
        name="Em",
        company="Acme",
        entity_type="spend",
        entity_id="00000000-0000-4000-8000-000000000000",
        locale=Locale("de", "DE"),
        public_url="https://spend.example.com",
        message_id="<m@example.com>",
    )
    assert rendered.subject == "[Acme] Your spend of 1.250,00\xa0€ was rejected"
    assert "Your spend of 1.250,00\xa0€ (Dinner) was rejected.\n\nno receipt" in rendered.text
    assert "<strong>1.250,00\xa0€</strong>" in rendered.html
