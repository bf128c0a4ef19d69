from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from spendtrackr.apps.cards import flows, lifecycle
from spendtrackr.apps.cards.models import CardStatus
from spendtrackr.apps.cards.schemas import (
    AuthorizationRead,
    AuthorizationRequest,
    AuthorizationResult,
    CaptureRequest,
    CardCreate,
    CardIssued,
    CardRead,
    CardTransactionRead,
    CardUpdate,
    RefundRequest,
    ReversalRequest,
)
from spendtrackr.apps.companies.deps import CardNetworkCaller, CardNetworkCompany
from spendtrackr.apps.users.deps import SIGNED_IN, CardManager, CurrentUser, ReadSession
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import NowDep, SettingsDep
from spendtrackr.core.idempotency import IdempotencyDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, SyncPageDep
from spendtrackr.core.routing import JSONRoute

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/cards",
    tags=["cards"],
    responses=errors(401),
)
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
    caller: CardNetworkCaller,
    now: NowDep,
    settings: SettingsDep,
) -> AuthorizationResult:
    """Called by the card processor, authenticated by the company's `x-webhook-secret`. Answers
    `{approved, decline_reason, spend_id}`; the same `authorization_id` always gets the first
    answer and is charged once (sent again for another card, amount or currency: 422
    `authorization_id_reused`). Decline reasons: `unknown_card`, `card_frozen`, `card_cancelled`,
    `currency_mismatch`, `category_blocked`, `mcc_blocked`, `spending_limit_exceeded:<interval>`,
    `budget_exceeded`, `policy_blocked`, `cardholder_inactive`, `no_rate`. `mcc` and
    `merchant_country` are kept with it and its spend's history."""
    return flows.authorize(session, caller=caller, body=body, key=settings.card_key, now=now)


authorizations = APIRouter(
    dependencies=SIGNED_IN,
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


# --- what follows an authorization --------------------------------------------------------------


@network.post("/captures", response_model=CardTransactionRead, responses=errors(401, 409, 422))
def capture(
    body: CaptureRequest, session: SessionDep, company: CardNetworkCompany, now: NowDep
) -> CardTransactionRead:
    """The purchase cleared (x-webhook-secret, as authorizations): all, part, or more than was
    authorized within CARD_CAPTURE_TOLERANCE_PERCENT (422 `over_capture` beyond); several
    captures add up. The spend's amount becomes what was captured. The same `capture_id` gets
    the first answer; 422 `unknown_authorization`, 409 `authorization_declined`,
    `currency_mismatch`, `billing_amount_required`, `network_id_reused`."""
    return lifecycle.capture(session, company=company, body=body, now=now)


@network.post("/reversals", response_model=CardTransactionRead, responses=errors(401, 409, 422))
def reverse(
    body: ReversalRequest, session: SessionDep, company: CardNetworkCompany, now: NowDep
) -> CardTransactionRead:
    """The hold released, all of it (no `amount`) or part (422 `over_reversal` beyond what is
    held). Released in full before any capture, the purchase did not happen: its pending spend
    is cancelled, an approved one credited."""
    return lifecycle.reverse(session, company=company, body=body, now=now)


@network.post("/refunds", response_model=CardTransactionRead, responses=errors(401, 409, 422))
def refund(
    body: RefundRequest, session: SessionDep, company: CardNetworkCompany, now: NowDep
) -> CardTransactionRead:
    """Money back: for an authorization, up to what it captured (422 `over_refund`), or for a
    card alone (`card_id`, `merchant_name`). The limits count it back; a credit spend (negative
    amount, `refund_of` the purchase) carries it to reports, budgets and the ledger."""
    return lifecycle.refund(session, company=company, body=body, now=now)


TransactionType = Literal["authorization", "capture", "reversal", "refund"]
Types = Annotated[list[TransactionType] | None, Query(alias="type", description="Repeatable")]
Status = Annotated[
    Literal["approved", "declined"] | None,
    Query(description="Authorizations with this answer only"),
]
Declined = Annotated[bool, Query(description="false: leave declined authorizations out")]
Holder = Annotated[uuid.UUID | None, Query(description="The cardholder (finance, admins)")]
Merchant = Annotated[str | None, Query(max_length=200, description="Part of the merchant's name")]


def _history(
    session: SessionDep,
    user: CurrentUser,
    page: SyncPageDep,
    card_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    type_: list[TransactionType] | None,
    status: Literal["approved", "declined"] | None,
    declined: bool,
    date_from: date | None,
    date_to: date | None,
    merchant: str | None,
) -> Page[CardTransactionRead]:
    return flows.history(
        session,
        actor=user,
        card_id=card_id,
        user_id=user_id,
        types=frozenset(type_) if type_ else None,
        approved=None if status is None else status == "approved",
        include_declined=declined,
        date_from=date_from,
        date_to=date_to,
        merchant=merchant,
        page=page,
    )


@router.get(
    "/{card_id}/transactions", response_model=Page[CardTransactionRead], responses=errors(404)
)
def card_transactions(
    card_id: uuid.UUID,
    session: ReadSession,
    user: CurrentUser,
    page: SyncPageDep,
    type_: Types = None,
    status: Status = None,
    declined: Declined = True,
    date_from: date | None = None,
    date_to: date | None = None,
    merchant: Merchant = None,
) -> Page[CardTransactionRead]:
    """The card's history (its holder, finance, admins): every authorization with its answer
    and reason, and the captures, reversals and refunds that followed, newest first or by
    cursor (`updated_since`, `cursor`)."""
    return _history(
        session, user, page, card_id, None, type_, status, declined, date_from, date_to, merchant
    )


transactions = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/card-transactions",
    tags=["cards"],
    responses=errors(401),
)


@transactions.get("", response_model=Page[CardTransactionRead], responses=errors(404))
def list_card_transactions(
    session: ReadSession,
    user: CurrentUser,
    page: SyncPageDep,
    card_id: uuid.UUID | None = None,
    user_id: Annotated[
        uuid.UUID | None, Query(description="The cardholder (finance, admins)")
    ] = None,
    type_: Types = None,
    status: Status = None,
    declined: Declined = True,
    date_from: date | None = None,
    date_to: date | None = None,
    merchant: Merchant = None,
) -> Page[CardTransactionRead]:
    """Every card's history (finance, admins), or your cards'. Dates are the company's days."""
    return _history(
        session, user, page, card_id, user_id, type_, status, declined, date_from, date_to, merchant
    )
