from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from spendtrackr.apps.cards import flows
from spendtrackr.apps.cards.models import CardStatus
from spendtrackr.apps.cards.schemas import (
    AuthorizationRead,
    AuthorizationRequest,
    AuthorizationResult,
    CardCreate,
    CardIssued,
    CardRead,
    CardUpdate,
)
from spendtrackr.apps.companies.deps import CardNetworkCompany
from spendtrackr.apps.users.deps import CardManager, CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import NowDep, SettingsDep
from spendtrackr.core.idempotency import IdempotencyDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, SyncPageDep
from spendtrackr.core.routing import JSONRoute

router = APIRouter(route_class=JSONRoute, prefix="/cards", tags=["cards"], responses=errors(401))
network = APIRouter(route_class=JSONRoute, prefix="/card-network", tags=["card network"])


@router.post("", response_model=CardIssued, status_code=201, responses=errors(403, 409, 422))
def issue_card(
    body: CardCreate,
    session: SessionDep,
    actor: CardManager,
    idem: IdempotencyDep,
    now: NowDep,
    settings: SettingsDep,
) -> Response:
    """Issue a virtual card (finance, admin). The full `number` and `cvc` are in this answer only:
    they are never stored (a replay of the same Idempotency-Key answers without them)."""
    return idem.run(
        session,
        company_id=actor.company_id,
        caller=f"user:{actor.id}",
        produce=lambda: flows.issue(
            session,
            actor=actor,
            body=body,
            key=settings.card_key,
            now=now,
        ),
        response_type=CardIssued,
        status_code=201,
        stored_type=CardRead,
    )


@router.get("", response_model=Page[CardRead])
def list_cards(
    session: SessionDep,
    user: CurrentUser,
    page: SyncPageDep,
    user_id: Annotated[uuid.UUID | None, Query()] = None,
    status: Annotated[CardStatus | None, Query()] = None,
) -> Page[CardRead]:
    """Your cards (finance and admins: every card of the company, filterable by holder)."""
    return flows.list_cards(session, actor=user, user_id=user_id, status=status, page=page)


@router.get("/{card_id}", response_model=CardRead, responses=errors(404))
def get_card(card_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> CardRead:
    return flows.get_card(session, actor=user, card_id=card_id)


@router.patch("/{card_id}", response_model=CardRead, responses=errors(403, 404, 409, 422))
def update_card(
    card_id: uuid.UUID, body: CardUpdate, session: SessionDep, actor: CardManager
) -> CardRead:
    """Change limits, category controls or label (a cancelled card: 409)."""
    return flows.update(session, actor=actor, card_id=card_id, body=body)


def _status_route(to: CardStatus, doc: str):  # type: ignore[no-untyped-def]
    def change(
        card_id: uuid.UUID, session: SessionDep, actor: CardManager, now: NowDep
    ) -> CardRead:
        return flows.change_status(session, actor=actor, card_id=card_id, to=to, now=now)

    change.__doc__ = doc
    return change


for _verb, _to, _doc in (
    ("freeze", CardStatus.frozen, "Freeze an active card: purchases are declined `card_frozen`."),
    ("unfreeze", CardStatus.active, "Unfreeze a frozen card."),
    ("cancel", CardStatus.cancelled, "Cancel a card for good (409 on any later change)."),
):
    router.add_api_route(
        f"/{{card_id}}/{_verb}",
        _status_route(_to, _doc),
        methods=["POST"],
        response_model=CardRead,
        responses=errors(403, 404, 409),
        name=f"{_verb}_card",
    )


@network.post("/authorizations", response_model=AuthorizationResult, responses=errors(401, 422))
def authorize(
    body: AuthorizationRequest,
    session: SessionDep,
    company: CardNetworkCompany,
    now: NowDep,
    settings: SettingsDep,
) -> AuthorizationResult:
    """Called by the card processor, authenticated by the company's `x-webhook-secret`. Answers
    `{approved, decline_reason, spend_id}`; the same `authorization_id` always gets the first
    answer and is charged once (sent again for another card, amount or currency: 422
    `authorization_id_reused`). Decline reasons: `unknown_card`, `card_frozen`, `card_cancelled`,
    `currency_mismatch`, `category_blocked`, `spending_limit_exceeded:<interval>`,
    `policy_blocked`, `cardholder_inactive`."""
    return flows.authorize(session, company=company, body=body, key=settings.card_key, now=now)


authorizations = APIRouter(
    route_class=JSONRoute,
    prefix="/card-authorizations",
    tags=["cards"],
    responses=errors(401),
)


@authorizations.get("", response_model=Page[AuthorizationRead])
def list_authorizations(
    session: SessionDep,
    user: CurrentUser,
    page: SyncPageDep,
    card_id: Annotated[uuid.UUID | None, Query()] = None,
    approved: Annotated[bool | None, Query(description="false: the declined ones")] = None,
) -> Page[AuthorizationRead]:
    """Every authorization the card network asked for, approved or declined with its reason:
    your cards' (finance and admins: every card of the company). Newest first, or by cursor
    (`updated_since`, `cursor`) in the order they were decided."""
    return flows.list_authorizations(
        session, actor=user, card_id=card_id, approved=approved, page=page
    )
