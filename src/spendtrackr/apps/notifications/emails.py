"""Notifications as emails: rendered from Jinja2 templates (HTML and plain text), amounts and
dates in the recipient's locale (Babel), handed to an SMTP server."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, select_autoescape

from spendtrackr.core.config import Settings
from spendtrackr.core.db import utcnow

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    trim_blocks=True,
    lstrip_blocks=True,
)

# Subject lines by kind (the notification's message otherwise).
SUBJECTS: dict[str, str] = {
    "approval.requested": "Approval requested: {amount}",
    "approval.reminder": "Still waiting for your approval: {amount}",
    "approval.escalated": "Escalated to you: {amount} waiting for a decision",
    "approval.needs_attention": "A spend has no one to approve it",
    "spend.approved": "Your spend of {amount} was approved",
    "spend.rejected": "Your spend of {amount} was rejected",
    "spend.blocked": "Your spend of {amount} was blocked",
    "spend.flagged": "Your spend of {amount} was flagged",
    "spend.reimbursed": "Your spend of {amount} was reimbursed",
    "receipt.amount_mismatch": "Your receipt does not match its spend",
    "receipt.unreadable": "Your receipt could not be read",
    "receipt.unmatched": "Your receipt needs its card purchase",
    "receipt.missing": "A card purchase is waiting for its receipt",
    "card.declined": "A purchase of {amount} was declined",
    "card.issued": "You have a new card",
    "card.frozen": "Your card was frozen",
    "card.unfrozen": "Your card was unfrozen",
    "card.cancelled": "Your card was cancelled",
    "card.limits_changed": "Your card's limits changed",
    "webhook_endpoint.disabled": "A webhook endpoint was turned off",
    "user.invited": "You are invited to {company} on SpendTrackr",
    "digest": "Your SpendTrackr digest",
}
# Where the button of an email points, by the notification's entity.
LINKS: dict[str, tuple[str, str]] = {
    "approval": ("/approvals", "Open your approvals"),
    "spend": ("/spends/{id}", "Open the spend"),
    "card": ("/cards/{id}", "Open the card"),
    "receipt": ("/receipts/{id}", "Open the receipt"),
}


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    html: str
    message_id: str
    unsubscribe: str | None = None  # the one-click link (RFC 8058), for kinds one may turn off


def locale_of(tag: str | None, fallback: str) -> Locale:
    for candidate in (tag, fallback, "en_US"):
        if candidate:
            try:
                return Locale.parse(candidate.replace("-", "_"))
            except (ValueError, UnknownLocaleError):
                continue
    return Locale("en", "US")


def _money(context: dict[str, Any], locale: Locale) -> str | None:
    amount, currency = context.get("amount"), context.get("currency")
    if amount is None or not currency:
        return None
    try:
        return format_currency(Decimal(str(amount)), str(currency), locale=locale)
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}"


def _day(value: Any, locale: Locale) -> str | None:
    try:
        return format_date(date.fromisoformat(str(value)), format="long", locale=locale)
    except ValueError:
        return None


def render(
    *,
    kind: str,
    message: str,
    context: dict[str, Any],
    to: str,
    name: str,
    company: str,
    entity_type: str | None,
    entity_id: str | None,
    locale: Locale,
    public_url: str,
    message_id: str,
    unsubscribe: str | None = None,
) -> Email:
    values: dict[str, Any] = {
        **context,
        "message": message,
        "name": name,
        "company": company,
        "lang": locale.language,
        "amount": _money(context, locale),
        "spend_date": _day(context["spend_date"], locale) if context.get("spend_date") else None,
        "expires": _day(context["expires"], locale) if context.get("expires") else None,
        "link": None,
        "link_label": None,
        "unsubscribe": unsubscribe,
        # what happened to it (`spend.approved` -> approved), and why when the message says
        "outcome": kind.rpartition(".")[2],
        "reason": context.get("reason") or message.partition(": ")[2] or None,
    }
    base = public_url.rstrip("/")
    given = context.get("private_link") or context.get("link")
    if given:
        values["link"] = base + str(given)
        values["link_label"] = context.get("link_label") or "Open SpendTrackr"
    elif entity_type in LINKS:
        path, label = LINKS[entity_type]
        values["link"], values["link_label"] = base + path.format(id=entity_id), label
    line = SUBJECTS.get(kind, "")
    if not line or ("{amount}" in line and values["amount"] is None):
        subject = message
    else:
        subject = line.format_map({"amount": values["amount"], "company": company})
    values["subject"] = subject
    parts = []
    family = kind.partition(".")[0]  # `spend.approved` falls back on `spend`, then the base
    for extension in ("txt", "html"):
        template = _TEMPLATES.select_template(
            [f"{kind}.{extension}.j2", f"{family}.{extension}.j2", f"base.{extension}.j2"]
        )
        parts.append(template.render(values))
    return Email(
        to=to,
        subject=f"[{company}] {subject}"[:250],
        text=parts[0],
        html=parts[1],
        message_id=message_id,
        unsubscribe=unsubscribe,
    )


# Lines up to RFC 5322's limit: a long link in `List-Unsubscribe` stays one plain URL instead of
# being folded into encoded words that mail clients would not follow.
_POLICY = email_policy.SMTP.clone(max_line_length=998)


def mime(email: Email, sender: str) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(utcnow())
    # Stable per notification: a receiver (or a mailbox) tells a second delivery by it.
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"
    if email.unsubscribe:
        message["List-Unsubscribe"] = f"<{email.unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def message_id(notification_id: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "spendtrackr.invalid"
    return f"<{notification_id}@{domain}>"


def connect(settings: Settings) -> smtplib.SMTP:
    """An SMTP connection as configured: TLS from the start (`ssl`), upgraded (`starttls`, the
    default) or none, logged in when a user name is set."""
    assert settings.smtp_host is not None
    context = ssl.create_default_context()
    if settings.smtp_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.smtp_ca_file))
    timeout = settings.smtp_timeout_seconds
    client: smtplib.SMTP
    if settings.smtp_tls == "ssl":
        client = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=context
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        if settings.smtp_tls == "starttls":
            client.starttls(context=context)
    if settings.smtp_username:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        client.login(settings.smtp_username, password)
    return client
