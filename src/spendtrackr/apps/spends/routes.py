from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response

from spendtrackr.apps.spends import flows
from spendtrackr.apps.spends.models import SpendStatus
from spendtrackr.apps.spends.schemas import SpendCreate, SpendFilters, SpendRead, SpendUpdate
from spendtrackr.apps.users.deps import SIGNED_IN, CardManager, CurrentUser, ReadSession
from spendtrackr.core.db import SessionDep
from spendtrackr.core.idempotency import IdempotencyDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, SyncPageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import DateRangeDep, check_amount_range

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/spends",
    tags=["spends"],
    responses=errors(401),
)

AmountQuery = Annotated[Decimal | None, Query(ge=0, le=Decimal("1e12"), max_digits=18)]


@router.post("", response_model=SpendRead, status_code=201, responses=errors(400, 409, 422))
def submit_spend(
    body: SpendCreate, session: SessionDep, user: CurrentUser, idem: IdempotencyDep
) -> Response:
    """Submit a spend. The company's active policies decide before the response: the spend comes
    back `approved`, `pending` (with its approval steps) or `blocked`, with `policy_result`
    explaining why. Send an `Idempotency-Key` to make retries safe."""
    return idem.run(
        session,
        company_id=user.company_id,
        caller=f"user:{user.id}",
        produce=lambda: flows.submit_spend(session, actor=user, body=body),
        response_type=SpendRead,
        status_code=201,
    )


@router.get("", response_model=Page[SpendRead], responses=errors(422))
def list_spends(
    session: ReadSession,
    user: CurrentUser,
    page: SyncPageDep,
    dates: DateRangeDep,
    status: Annotated[SpendStatus | None, Query()] = None,
    user_id: Annotated[uuid.UUID | None, Query()] = None,
    category_id: Annotated[uuid.UUID | None, Query()] = None,
    vendor_id: Annotated[uuid.UUID | None, Query()] = None,
    min_amount: AmountQuery = None,
    max_amount: AmountQuery = None,
) -> Page[SpendRead]:
    """Spends you may see, newest first: your own (employees); also your reports', your teams'
    members' and those made for your teams (managers); all of the company's (finance, admin)."""
    check_amount_range(min_amount, max_amount)
    filters = SpendFilters(
        status=status,
        user_id=user_id,
        category_id=category_id,
        vendor_id=vendor_id,
        date_from=dates.date_from,
        date_to=dates.date_to,
        min_amount=min_amount,
        max_amount=max_amount,
    )
    return flows.list_spends(session, actor=user, filters=filters, page=page)


@router.get("/{spend_id}", response_model=SpendRead, responses=errors(404))
def get_spend(spend_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> SpendRead:
    return flows.get_spend(session, actor=user, spend_id=spend_id)


@router.patch("/{spend_id}", response_model=SpendRead, responses=errors(403, 404, 409, 422))
def update_spend(
    spend_id: uuid.UUID, body: SpendUpdate, session: SessionDep, user: CurrentUser
) -> SpendRead:
    """Edit your pending spend. A change to what the policies decide on (amount, currency,
    vendor, category, team) has them decide again and replace its open approval steps. A card
    spend's amount, currency, date and vendor are the card network's: changing them is 422
    `card_spend_field_locked`. `team_id` must be one of your teams (422 `not_team_member`)."""
    return flows.update_spend(session, actor=user, spend_id=spend_id, body=body)


@router.post("/{spend_id}/cancel", response_model=SpendRead, responses=errors(403, 404, 409))
def cancel_spend(spend_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> SpendRead:
    """Withdraw your pending spend. A card purchase cannot be withdrawn (409): the card was
    charged, and only a refund from the card network gives the money back."""
    return flows.cancel_spend(session, actor=user, spend_id=spend_id)


@router.post("/{spend_id}/reimburse", response_model=SpendRead, responses=errors(403, 404, 409))
def reimburse_spend(spend_id: uuid.UUID, session: SessionDep, user: CardManager) -> SpendRead:
    """Mark an approved spend as paid out (finance, admin)."""
    return flows.reimburse_spend(session, actor=user, spend_id=spend_id)
