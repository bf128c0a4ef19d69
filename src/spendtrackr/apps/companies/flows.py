"""Changing a company: its card ceilings reach the cards already issued."""

from __future__ import annotations

from sqlalchemy.orm import Session

from spendtrackr.apps.cards import flows as card_flows
from spendtrackr.apps.companies import service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.companies.schemas import CompanyUpdate
from spendtrackr.apps.users.models import User


def update_company(session: Session, *, actor: User, body: CompanyUpdate) -> Company:
    """Apply a PATCH. New ceilings of card limits are kept in the base currency's minor units,
    and cards above a ceiling (new, or in a new base currency) are lowered to it."""
    changes = body.changes()
    if changes.get("max_card_limits") is not None:
        currency = (
            changes.get("base_currency")
            or service.get_company_or_404(session, actor.company_id).base_currency
        )
        changes = {
            **changes,
            "max_card_limits": card_flows.ceilings(changes["max_card_limits"], currency),
        }
    company = service.update_company(
        session, company_id=actor.company_id, actor_id=actor.id, changes=changes
    )
    if "max_card_limits" in changes or "base_currency" in changes:
        card_flows.apply_company_maximums(session, company=company, actor_id=actor.id)
    return company
