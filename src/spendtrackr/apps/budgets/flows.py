"""Budgets as finance manages and reads them. A budget is created and deleted under its company's
row lock, which also keeps `Company.budget_count` (what lets a company without budgets skip them
on every spend) and waits for the spends in flight (they hold that row shared)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from spendtrackr.apps.budgets import service
from spendtrackr.apps.budgets.models import Budget, BudgetPeriod
from spendtrackr.apps.budgets.schemas import BudgetCreate, BudgetRead, BudgetUpdate, check_range
from spendtrackr.apps.catalog.models import Category
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.teams.models import Team
from spendtrackr.apps.users.models import User
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import referenced
from spendtrackr.core.errors import ValidationFailed
from spendtrackr.core.pagination import Page, PageParams


def _check_references(session: Session, company_id: uuid.UUID, fields: dict[str, Any]) -> None:
    for what, model in (("team_id", Team), ("category_id", Category)):
        if fields.get(what) is not None:
            referenced(session, model, fields[what], company_id, what=what)


def create_budget(
    session: Session, *, actor: User, body: BudgetCreate, now: datetime
) -> BudgetRead:
    fields = body.model_dump()
    _check_references(session, actor.company_id, fields)
    company = companies_service.get_company_or_404(session, actor.company_id, for_update=True)
    fields["amount"] = _positive(
        quantize(fields["amount"], company.base_currency), company.base_currency
    )
    budget = Budget(
        id=uuid.uuid4(), company_id=company.id, currency=company.base_currency, **fields
    )
    service.add(session, budget, actor_id=actor.id)
    company.budget_count += 1
    return read(session, budget, on=_today(company.timezone, now))


def _positive(amount: Decimal, currency: str) -> Decimal:
    if amount <= 0:
        raise ValidationFailed(f"amount rounds to {amount} {currency}", code="invalid_amount")
    return amount


def update_budget(
    session: Session, *, actor: User, budget_id: uuid.UUID, body: BudgetUpdate, now: datetime
) -> BudgetRead:
    """Change a budget. Its row lock waits for the spends being decided against it."""
    changes = body.changes()
    budget = service.get_or_404(
        session, company_id=actor.company_id, budget_id=budget_id, for_update=True
    )
    _check_references(session, actor.company_id, changes)
    period = changes.get("period", budget.period)
    if period != BudgetPeriod.custom and "period" in changes:
        # Leaving a date range drops its dates unless the same request sets them (then 422).
        changes.setdefault("starts_on", None)
        changes.setdefault("ends_on", None)
    try:
        check_range(
            period,
            changes.get("starts_on", budget.starts_on),
            changes.get("ends_on", budget.ends_on),
        )
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_period") from None
    if "amount" in changes:
        changes["amount"] = _positive(quantize(changes["amount"], budget.currency), budget.currency)
    service.change(session, budget, changes, actor_id=actor.id)
    company = companies_service.get_company_or_404(session, actor.company_id)
    return read(session, budget, on=_today(company.timezone, now))


def delete_budget(session: Session, *, actor: User, budget_id: uuid.UUID) -> None:
    company = companies_service.get_company_or_404(session, actor.company_id, for_update=True)
    budget = service.get_or_404(
        session, company_id=actor.company_id, budget_id=budget_id, for_update=True
    )
    service.remove(session, budget, actor_id=actor.id)
    company.budget_count -= 1


def get_budget(
    session: Session, *, actor: User, budget_id: uuid.UUID, on: date | None, now: datetime
) -> BudgetRead:
    budget = service.get_or_404(session, company_id=actor.company_id, budget_id=budget_id)
    return read(session, budget, on=on or _company_today(session, actor.company_id, now))


def list_budgets(
    session: Session,
    *,
    actor: User,
    page: PageParams,
    on: date | None,
    team_id: uuid.UUID | None,
    category_id: uuid.UUID | None,
    active: bool | None,
    now: datetime,
) -> Page[BudgetRead]:
    total, rows = service.list_budgets(
        session,
        company_id=actor.company_id,
        page=page,
        team_id=team_id,
        category_id=category_id,
        active=active,
    )
    day = on or _company_today(session, actor.company_id, now)
    return Page(total=total, items=[read(session, b, on=day) for b in rows])


def read(session: Session, budget: Budget, *, on: date) -> BudgetRead:
    """The budget with what it has used in the period holding `on`, what is left, and where the
    period is heading at the pace so far."""
    shown = BudgetRead.model_validate(budget)
    period = service.period_of(budget, on)
    if period is None:
        return shown.model_copy(update={"remaining": budget.amount})
    start, end = period
    used = service.used(session, budget, start, end)
    return shown.model_copy(
        update={
            "period_start": start,
            "period_end": end,
            "spent_approved": used.approved,
            "spent_pending": used.pending,
            "remaining": budget.amount - used.total,
            "forecast": forecast(used.total, start, end, on),
        }
    )


def forecast(spent: Decimal, start: date, end: date, on: date) -> Decimal:
    """Linear: what was spent per day from the period's start to `on` (inclusive), over all of
    its days. A period that has ended (or not begun) is what it has."""
    if on >= end or on < start:
        return spent
    elapsed = (on - start).days + 1
    days = (end - start).days + 1
    return spent * days / elapsed


def _today(timezone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def _company_today(session: Session, company_id: uuid.UUID, now: datetime) -> date:
    return _today(companies_service.get_company_or_404(session, company_id).timezone, now)
