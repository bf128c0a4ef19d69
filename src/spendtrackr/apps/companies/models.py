from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Entity


def new_policy_version() -> int:
    return secrets.randbits(63)


class Company(Entity):
    __audit_entity__ = "company"
    __audit_company__ = "id"  # a company is its own tenant
    __tablename__ = "company"

    name: Mapped[str] = mapped_column(String(200))
    base_currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The most any card may be allowed a window (`[{amount, interval}]`, base currency): a
    # card's limit for a capped window is at most this, and a card without one gets it.
    max_card_limits: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # How many budgets the company has (kept under this row's lock by the budgets domain): a
    # spend of a company without any looks none up.
    budget_count: Mapped[int] = mapped_column(default=0)
    # Drawn afresh by every change to the company's policies, under this row's lock (the
    # policies domain): each process keeps the compiled rules of the company's active policies by
    # it, so a spend reads no policy while they stay the same. Random, not a count: a database
    # restored from a backup cannot give an old number to a different set of policies.
    policy_version: Mapped[int] = mapped_column(BigInteger, default=new_policy_version)
    # The company's own ledger accounts (`expense`, `card_liability`, `employee_payable`, `cash`,
    # `tax`), each replacing the server's default; none: every one is the default.
    ledger_accounts: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # The books are closed through this day (the end of a month): nothing dated on or before it
    # changes, and what must still be booked is booked on the day after.
    books_closed_through: Mapped[date | None]
    # The accounts payouts are paid from: `{"sepa": {name, iban, bic}, "ach": {company_name,
    # company_id, routing_number, bank_name}}` (PUT /payouts/settings).
    payout_accounts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Whether directory sync may make someone an admin (off: it can grant any other role).
    directory_may_grant_admin: Mapped[bool] = mapped_column(default=False)
    # A step pending this long reminds its approvers (then daily); this long, it is escalated.
    approval_reminder_hours: Mapped[int] = mapped_column(default=24)
    approval_escalation_hours: Mapped[int] = mapped_column(default=72)
    # SHA-256 of the card network's webhook secret; the secret itself is shown once.
    webhook_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The secret a rotation replaced, still accepted until then (a processor keeps working while
    # it is given the new one); none when the rotation asked for no overlap.
    previous_webhook_secret_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_webhook_secret_expires_at: Mapped[datetime | None]
    # The directory-sync secret: a source of its own, so that a leaked card-network secret
    # cannot change users (and the reverse).
    directory_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    previous_directory_secret_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_directory_secret_expires_at: Mapped[datetime | None]
