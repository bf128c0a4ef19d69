"""The journal entries of a spend's status change, written in the same transaction as the change
(the ledger is written as money moves, not at export time)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from spendtrackr.apps.catalog import service as catalog_service
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.ledger import service as ledger_service
from spendtrackr.apps.spends.models import Spend, SpendSource, SpendStatus
from spendtrackr.apps.users.models import User
from spendtrackr.core.config import get_settings
from spendtrackr.core.db import utcnow


def _accounts() -> ledger_service.Accounts:
    settings = get_settings()
    return ledger_service.Accounts(
        default_expense=settings.ledger_default_expense_account,
        card_liability=settings.ledger_card_liability_account,
        employee_payable=settings.ledger_employee_payable_account,
        cash=settings.ledger_cash_account,
    )


def _posting(session: Session, spend: Spend, entry_date: date) -> ledger_service.Posting:
    employee = session.get(User, spend.user_id)
    vendor = (
        catalog_service.get_or_404(
            session, Vendor, company_id=spend.company_id, item_id=spend.vendor_id
        ).name
        if spend.vendor_id
        else ""
    )
    return ledger_service.Posting(
        spend_id=spend.id,
        company_id=spend.company_id,
        entry_date=entry_date,
        amount=spend.amount,
        currency=spend.currency,
        vendor=vendor,
        description=spend.description,
        employee=employee.full_name if employee else "",
    )


def post_status(session: Session, spend: Spend, to: SpendStatus) -> None:
    """An approved spend is booked as an expense (against the card's liability or what is owed
    to the employee); a reimbursed one settles what was owed from cash. Other statuses post
    nothing."""
    if to is SpendStatus.approved:
        gl_code = (
            catalog_service.get_or_404(
                session, Category, company_id=spend.company_id, item_id=spend.category_id
            ).gl_code
            if spend.category_id
            else None
        )
        ledger_service.post_approval(
            session,
            _posting(session, spend, spend.spend_date),
            expense_account=gl_code,
            card=spend.source == SpendSource.card,
            accounts=_accounts(),
        )
    elif to is SpendStatus.reimbursed:
        ledger_service.post_reimbursement(
            session, _posting(session, spend, utcnow().date()), accounts=_accounts()
        )
