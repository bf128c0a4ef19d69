"""A company's starter workspace, and changes to a company: its card ceilings reach the cards
already issued."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from spendtrackr.apps.cards import flows as card_flows
from spendtrackr.apps.catalog import service as catalog_service
from spendtrackr.apps.catalog.models import Category
from spendtrackr.apps.companies import service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.companies.schemas import CompanyUpdate
from spendtrackr.apps.policies import service as policies_service
from spendtrackr.apps.policies.rules import Rule
from spendtrackr.apps.spends import service as spends_service
from spendtrackr.apps.users.models import User
from spendtrackr.core.errors import Conflict


def update_company(session: Session, *, actor: User, body: CompanyUpdate) -> Company:
    """Apply a PATCH. New ceilings of card limits are kept in the base currency's minor units,
    and cards above a ceiling (new, or in a new base currency) are lowered to it."""
    changes = body.changes()
    if "base_currency" in changes:
        company = service.get_company_or_404(session, actor.company_id, for_update=True)
        changing = changes["base_currency"] != company.base_currency
        if changing and (
            company.budget_count or spends_service.any_spend(session, company_id=company.id)
        ):
            # Every spend's base amount, every ledger line and every budget is in it.
            raise Conflict(
                f"the base currency stays {company.base_currency}: the company has spends or "
                "budgets measured in it",
                code="base_currency_in_use",
            )
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


# A chart a small company can start from: GL codes in the 6000s (operating expenses), next to
# the default expense account (6000) and the card/payable accounts (2100, 2000).
STARTER_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("Travel", "6100"),
    ("Lodging", "6110"),
    ("Meals & Entertainment", "6200"),
    ("Software & Subscriptions", "6300"),
    ("Office Supplies", "6400"),
    ("Equipment", "6500"),
    ("Training & Education", "6600"),
    ("Marketing & Advertising", "6700"),
    ("Professional Services", "6800"),
    ("Other", "6900"),
)
EXAMPLE_POLICY = "Example: approvals and receipts"


def create_starter_workspace(
    session: Session, *, company_id: uuid.UUID, actor_id: uuid.UUID
) -> None:
    """What a company starts with at signup, so it can submit and book spends at once:
    categories with GL codes, and an example policy left inactive for an admin to read, adjust
    and turn on (amounts are in the company's base currency)."""
    categories = {
        name: catalog_service.create_item(
            session,
            Category,
            company_id=company_id,
            actor_id=actor_id,
            fields={"name": name, "gl_code": code},
        )
        for name, code in STARTER_CATEGORIES
    }
    meals = categories["Meals & Entertainment"].id
    rules = [
        {
            "condition": {"amount_gt": 10000},
            "action": {"type": "block", "reason": "Over 10,000: raise a purchase order instead"},
            "priority": 1,
        },
        {
            "condition": {"amount_gt": 75, "receipt_missing": True},
            "action": {"type": "flag", "flag": "receipt_missing"},
            "priority": 10,
        },
        {
            "condition": {"category_in": [str(meals)], "amount_gt": 250},
            "action": {"type": "require_approval", "approver": "manager"},
            "priority": 20,
        },
        {
            "condition": {"amount_gt": 1000},
            "action": {"type": "require_approval", "approver": "manager"},
            "priority": 30,
        },
        {
            "condition": {"amount_gt": 5000},
            "action": {"type": "require_approval", "approver": "role:finance"},
            "priority": 40,
        },
    ]
    policies_service.create_policy(
        session,
        company_id=company_id,
        actor_id=actor_id,
        name=EXAMPLE_POLICY,
        is_active=False,
        rules=[Rule.model_validate(rule) for rule in rules],
    )
