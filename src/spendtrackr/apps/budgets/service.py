"""Budgets: their rows, their periods, and what each has used.

What a budget has used is read, never stored: the spends' daily totals (`SpendTotal`) of its
group and period, plus what the current transaction changed and has not written yet (the totals
are written just before the commit), or, for a budget on a team *and* a category (the totals
keep one dimension per row), the spends themselves. Pending spends and approved or reimbursed
ones count; blocked, rejected and cancelled ones do not.

A spend that adds to a budget is decided with the budget's row locked (`lock_matching`, ids in
order) until its transaction commits, after its totals are written: the next spend of the same
budget reads them once it has the lock, so concurrent spends never take a hard budget past its
amount.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, inspect, or_, select
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.budgets.models import Budget, BudgetMode, BudgetPeriod
from spendtrackr.apps.spends import totals
from spendtrackr.apps.spends.models import NO_GROUP, Spend, SpendStatus, SpendTotal
from spendtrackr.core.db import apply_changes, exact_sum, get_in_company_or_404, id_param, plain
from spendtrackr.core.pagination import PageParams, paginate

BUDGET_NOT_FOUND = "Budget not found"

APPROVED = (SpendStatus.approved, SpendStatus.reimbursed)
PENDING = (SpendStatus.pending,)
COUNTED = frozenset((*APPROVED, *PENDING))


# --- periods -----------------------------------------------------------------------------------


def period_of(budget: Budget, day: date) -> tuple[date, date] | None:
    """The budget's period that holds `day` (calendar months, quarters and years), or None when
    a date-range budget does not cover it."""
    if budget.period == BudgetPeriod.custom:
        assert budget.starts_on is not None
        assert budget.ends_on is not None
        if budget.starts_on <= day <= budget.ends_on:
            return budget.starts_on, budget.ends_on
        return None
    if budget.period == BudgetPeriod.yearly:
        return date(day.year, 1, 1), date(day.year, 12, 31)
    first_month = (
        day.month if budget.period == BudgetPeriod.monthly else (day.month - 1) // 3 * 3 + 1
    )
    last_month = day.month if budget.period == BudgetPeriod.monthly else first_month + 2
    last_day = calendar.monthrange(day.year, last_month)[1]
    return date(day.year, first_month, 1), date(day.year, last_month, last_day)


# --- rows --------------------------------------------------------------------------------------


def get_or_404(
    session: Session, *, company_id: uuid.UUID, budget_id: uuid.UUID, for_update: bool = False
) -> Budget:
    return get_in_company_or_404(
        session, Budget, budget_id, company_id, detail=BUDGET_NOT_FOUND, for_update=for_update
    )


def list_budgets(
    session: Session,
    *,
    company_id: uuid.UUID,
    page: PageParams,
    team_id: uuid.UUID | None = None,
    category_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> tuple[int, list[Budget]]:
    stmt = select(Budget).where(Budget.company_id == company_id)
    if team_id is not None:
        stmt = stmt.where(Budget.team_id == team_id)
    if category_id is not None:
        stmt = stmt.where(Budget.category_id == category_id)
    if active is not None:
        stmt = stmt.where(Budget.is_active == active)
    return paginate(session, stmt.order_by(Budget.created_at.desc(), Budget.id), page)


def add(session: Session, budget: Budget, *, actor_id: uuid.UUID) -> None:
    session.add(budget)
    session.flush()
    audit.record_change(
        session, budget, "budget.created", actor_id=actor_id, metadata=_shown(budget)
    )


def change(
    session: Session, budget: Budget, changes: dict[str, object], *, actor_id: uuid.UUID
) -> None:
    diff = apply_changes(budget, changes)
    session.flush()
    audit.record_change(
        session, budget, "budget.updated", actor_id=actor_id, metadata={"changes": diff}
    )


def remove(session: Session, budget: Budget, *, actor_id: uuid.UUID) -> None:
    audit.record_change(
        session, budget, "budget.deleted", actor_id=actor_id, metadata=_shown(budget)
    )
    session.delete(budget)
    session.flush()


def _shown(budget: Budget) -> dict[str, object]:
    return {
        "name": budget.name,
        "team_id": budget.team_id,
        "category_id": budget.category_id,
        "period": budget.period,
        "starts_on": budget.starts_on,
        "ends_on": budget.ends_on,
        "amount": budget.amount,
        "currency": budget.currency,
        "mode": budget.mode,
    }


def count_of(session: Session, *, company_id: uuid.UUID) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Budget).where(Budget.company_id == company_id)
        )
        or 0
    )


# --- what a budget has used ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Used:
    approved: Decimal
    pending: Decimal

    @property
    def total(self) -> Decimal:
        return self.approved + self.pending


# Built once, executed with parameters: a company with budgets runs these on every submission
# (core/db.py). A spend without a team or category compares the budget's column with NULL, which
# matches nothing: only the budgets without one remain.
_MATCHING = (
    select(Budget)
    .where(
        Budget.company_id == id_param("company_id"),
        Budget.is_active.is_(True),
        or_(Budget.team_id.is_(None), Budget.team_id == id_param("team_id")),
        or_(Budget.category_id.is_(None), Budget.category_id == id_param("category_id")),
    )
    .order_by(Budget.id)
)
_MATCHING_LOCKED = _MATCHING.with_for_update().execution_options(populate_existing=True)


def matching(session: Session, spend: Spend, *, lock: bool = True) -> list[Budget]:
    """The company's active budgets that `spend` counts in (its team or none, its category or
    none, a period holding its date), locked to the commit unless `lock` is false, ids in order
    so that two spends lock the budgets they share in the same order."""
    found = session.scalars(
        _MATCHING_LOCKED if lock else _MATCHING,
        {
            "company_id": spend.company_id,
            "team_id": spend.team_id,
            "category_id": spend.category_id,
        },
    )
    return [b for b in found if period_of(b, spend.spend_date) is not None]


def used(
    session: Session, budget: Budget, start: date, end: date, *, besides: Spend | None = None
) -> Used:
    """What the budget's spends dated `start`..`end` add up to, as this transaction sees them,
    without `besides` (the spend being decided) when it is already counted."""
    if budget.team_id is not None and budget.category_id is not None:
        return _used_by_spends(session, budget, start, end, besides)
    by_status = _used_by_totals(session, budget, start, end)
    if besides is not None and _counted(besides) and _in(budget, besides, start, end):
        by_status[besides.status] = by_status.get(besides.status, Decimal(0)) - besides.base_amount
    return _split(by_status)


def _split(by_status: dict[SpendStatus, Decimal]) -> Used:
    zero = Decimal(0)
    return Used(
        approved=sum((by_status.get(s, zero) for s in APPROVED), zero),
        pending=sum((by_status.get(s, zero) for s in PENDING), zero),
    )


def _counted(spend: Spend) -> bool:
    """Whether the spend is in the totals already (written, or noted by a flush)."""
    return inspect(spend).persistent and spend.status in COUNTED


def _in(budget: Budget, spend: Spend, start: date, end: date) -> bool:
    return (
        start <= spend.spend_date <= end
        and (budget.team_id is None or budget.team_id == spend.team_id)
        and (budget.category_id is None or budget.category_id == spend.category_id)
    )


def _group(budget: Budget) -> tuple[str, uuid.UUID]:
    """The totals' dimension and group that hold the budget's spends: a day's few rows (by
    currency and status) whatever the number of categories, vendors or teams."""
    if budget.team_id is not None:
        return "team", budget.team_id
    if budget.category_id is not None:
        return "category", budget.category_id
    return "company", NO_GROUP


_USED_BY_TOTALS = (
    select(SpendTotal.status, func.sum(SpendTotal.base_total))
    .where(
        SpendTotal.company_id == id_param("company_id"),
        SpendTotal.dimension == bindparam("dimension"),
        SpendTotal.group_id == id_param("group_id"),
        SpendTotal.spend_date >= bindparam("start"),
        SpendTotal.spend_date <= bindparam("end"),
        SpendTotal.status.in_(sorted(COUNTED)),
    )
    .group_by(SpendTotal.status)
)


def _used_by_totals(
    session: Session, budget: Budget, start: date, end: date
) -> dict[SpendStatus, Decimal]:
    session.flush()  # what this transaction changed is noted at its flushes
    dimension, group = _group(budget)
    rows = plain(session).execute(  # flushed above
        _USED_BY_TOTALS,
        {
            "company_id": budget.company_id,
            "dimension": dimension,
            "group_id": group,
            "start": start,
            "end": end,
        },
    )
    by_status: dict[SpendStatus, Decimal] = {row[0]: row[1] or Decimal(0) for row in rows}
    for key, (_count, _total, base_total) in totals.unwritten(session).items():
        company_id, key_dimension, group_id, day, _currency, status = key
        if (
            company_id == budget.company_id
            and key_dimension == dimension
            and group_id == group
            and start <= day <= end
            and status in COUNTED
        ):
            status = SpendStatus(status)
            by_status[status] = by_status.get(status, Decimal(0)) + base_total
    return by_status


def _used_by_spends(
    session: Session, budget: Budget, start: date, end: date, besides: Spend | None
) -> Used:
    s = Spend
    dialect = session.get_bind().dialect.name
    stmt = (
        select(s.status, exact_sum(s.base_amount, dialect))
        .where(
            s.company_id == budget.company_id,
            s.team_id == budget.team_id,
            s.category_id == budget.category_id,
            s.spend_date >= start,
            s.spend_date <= end,
            s.status.in_(COUNTED),
        )
        .group_by(s.status)
    )
    if besides is not None and inspect(besides).persistent:
        stmt = stmt.where(s.id != besides.id)
    return _split({row[0]: row[1] or Decimal(0) for row in session.execute(stmt)})


# --- deciding a spend -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """Where a spend would leave the budgets it counts in."""

    remaining: Decimal  # the least any of them would have left after it (negative: over)
    exceeded: tuple[Budget, ...]  # those it would take past their amount

    @property
    def hard_exceeded(self) -> Budget | None:
        return next((b for b in self.exceeded if b.mode == BudgetMode.hard), None)


def check(session: Session, spend: Spend, *, lock: bool = True) -> Check | None:
    """Lock the budgets `spend` counts in and say where it would leave them (None: no budget
    covers it). The locks are held to the commit: see the module's docstring. Without `lock`
    (a dry run), the answer is only as of now."""
    remaining: Decimal | None = None
    exceeded: list[Budget] = []
    for budget in matching(session, spend, lock=lock):
        start, end = period_of(budget, spend.spend_date) or (spend.spend_date, spend.spend_date)
        left = budget.amount - used(session, budget, start, end, besides=spend).total
        left -= spend.base_amount
        if left < 0:
            exceeded.append(budget)
        remaining = left if remaining is None else min(remaining, left)
    if remaining is None:
        return None
    return Check(remaining=remaining, exceeded=tuple(exceeded))


def facts(session: Session, spend: Spend, *, lock: bool = True) -> dict[str, Any]:
    """The policy engine's budget facts about `spend` (`engine.Facts` fields)."""
    found = check(session, spend, lock=lock)
    if found is None:
        return {}
    hard = found.hard_exceeded
    return {
        "budget_remaining": found.remaining,
        "budget_exceeded": bool(found.exceeded),
        "hard_budget_exceeded": None if hard is None else hard.name,
    }
