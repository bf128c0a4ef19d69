from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from spendtrackr.apps.budgets import flows
from spendtrackr.apps.budgets.schemas import BudgetCreate, BudgetRead, BudgetUpdate
from spendtrackr.apps.users.deps import SIGNED_IN, FinanceUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import NowDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import Message

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/budgets",
    tags=["budgets"],
    responses=errors(401, 403),
)

OnDate = Annotated[
    date | None,
    Query(
        alias="date",
        description="Show the period holding this day (default: today in the company's time zone)",
    ),
]


@router.post("", response_model=BudgetRead, status_code=201, responses=errors(422))
def create_budget(
    body: BudgetCreate, session: SessionDep, actor: FinanceUser, now: NowDep
) -> BudgetRead:
    """A budget for a team and/or a category, or the whole company with neither (finance,
    admins), in the company's base currency. Pending, approved and reimbursed spends count.
    A `hard` budget blocks a spend that would take it past its amount (a card purchase is
    declined `budget_exceeded`); a `soft` one flags it `over_budget`. Policies can also ask
    `budget_exceeded` and `budget_remaining_lt`. 422 `invalid_team` / `invalid_category` for
    another company's ids."""
    return flows.create_budget(session, actor=actor, body=body, now=now)


@router.get("", response_model=Page[BudgetRead])
def list_budgets(
    session: SessionDep,
    actor: FinanceUser,
    page: PageDep,
    now: NowDep,
    on: OnDate = None,
    team_id: uuid.UUID | None = None,
    category_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> Page[BudgetRead]:
    """The company's budgets, newest first, each with its current period's use."""
    return flows.list_budgets(
        session,
        actor=actor,
        page=page,
        on=on,
        team_id=team_id,
        category_id=category_id,
        active=active,
        now=now,
    )


@router.get("/{budget_id}", response_model=BudgetRead, responses=errors(404))
def get_budget(
    budget_id: uuid.UUID, session: SessionDep, actor: FinanceUser, now: NowDep, on: OnDate = None
) -> BudgetRead:
    """The budget with what its period has used (approved and pending, apart), what remains
    and the forecast at the period's end."""
    return flows.get_budget(session, actor=actor, budget_id=budget_id, on=on, now=now)


@router.patch("/{budget_id}", response_model=BudgetRead, responses=errors(404, 422))
def update_budget(
    budget_id: uuid.UUID, body: BudgetUpdate, session: SessionDep, actor: FinanceUser, now: NowDep
) -> BudgetRead:
    """Change any field; a lower amount applies to the next spend (those already counted
    stay). 422 `invalid_period` for a custom period without a valid range."""
    return flows.update_budget(session, actor=actor, budget_id=budget_id, body=body, now=now)


@router.delete("/{budget_id}", response_model=Message, responses=errors(404))
def delete_budget(budget_id: uuid.UUID, session: SessionDep, actor: FinanceUser) -> Message:
    flows.delete_budget(session, actor=actor, budget_id=budget_id)
    return Message(message="Deleted successfully")
