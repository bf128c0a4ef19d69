"""Issuing and controlling cards, and the real-time authorization of card purchases."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spendtrackr.apps.cards import service as cards_service
from spendtrackr.apps.cards.models import Card, CardAuthorization, CardStatus
from spendtrackr.apps.cards.schemas import (
    AuthorizationRead,
    AuthorizationRequest,
    AuthorizationResult,
    CardCreate,
    CardIssued,
    CardRead,
    CardTransactionRead,
    CardUpdate,
)
from spendtrackr.apps.catalog import service as catalog_service
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.notifications import service as notifications
from spendtrackr.apps.policies import engine
from spendtrackr.apps.spends import flows as spend_flows
from spendtrackr.apps.spends.models import Spend
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import User
from spendtrackr.apps.users.permissions import Capability, can
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import referenced
from spendtrackr.core.errors import Forbidden, NotFound, ValidationFailed
from spendtrackr.core.pagination import Page, SyncParams


def _check_categories(
    session: Session, company_id: uuid.UUID, ids: list[uuid.UUID] | None
) -> list[str]:
    for category_id in ids or []:
        try:
            catalog_service.get_or_404(
                session, Category, company_id=company_id, item_id=category_id
            )
        except NotFound:
            raise ValidationFailed(
                f"category {category_id} does not exist in this company", code="invalid_category"
            ) from None
    return [str(c) for c in dict.fromkeys(ids or [])]


def _limit_amount(amount: Decimal, currency: str, interval: str) -> str:
    """A limit in the card currency's minor units (as spends are); one that rounds to nothing
    would decline every purchase, so it is refused as a spend of no amount is."""
    rounded = quantize(amount, currency)
    if rounded <= 0:
        raise ValidationFailed(
            f"the {interval} limit rounds to {rounded} {currency}; it must be more than zero",
            code="invalid_limit",
        )
    return str(rounded)


def ceilings(limits: list[Any], base_currency: str) -> list[dict[str, str]]:
    """The company's `max_card_limits` as stored: each in its base currency's minor units."""
    return [
        {"amount": _limit_amount(c.amount, base_currency, c.interval), "interval": c.interval}
        for c in limits
    ]


def within_maximums(
    limits: list[dict[str, Any]], company: Company, currency: str, *, lower: bool = False
) -> list[dict[str, Any]]:
    """A card's limits under the company's ceilings (`max_card_limits`, base currency): a window
    the company caps gets the ceiling when the card has no limit of its own for it; a limit
    above its ceiling is refused (422), or lowered to it with `lower`."""
    ceilings = {c["interval"]: Decimal(c["amount"]) for c in company.max_card_limits}
    if not ceilings:
        return limits
    if currency != company.base_currency:
        raise ValidationFailed(
            f"the company caps card limits in {company.base_currency}: a card in {currency} "
            "cannot be held to them",
            code="currency_not_capped",
        )
    out = []
    for limit in limits:
        ceiling = ceilings.pop(limit["interval"], None)
        if ceiling is not None and Decimal(limit["amount"]) > ceiling:
            if not lower:
                raise ValidationFailed(
                    f"the {limit['interval']} limit is above the company's maximum of "
                    f"{ceiling} {currency}",
                    code="limit_above_company_maximum",
                )
            limit = {**limit, "amount": str(quantize(ceiling, currency))}
        out.append(limit)
    out += [{"amount": str(quantize(c, currency)), "interval": i} for i, c in ceilings.items()]
    return out


def _not_for_self(actor: User, holder_id: uuid.UUID, what: str) -> None:
    if holder_id == actor.id:
        raise Forbidden(
            f"Nobody {what} for themselves: another finance user or admin must do it",
            code="separation_of_duties",
        )


def _controls(
    session: Session, company: Company, fields: dict[str, Any], currency: str
) -> dict[str, Any]:
    company_id = company.id
    out = dict(fields)
    if "spending_limits" in fields:
        raw = [x if isinstance(x, dict) else x.model_dump() for x in fields["spending_limits"]]
        out["spending_limits"] = within_maximums(
            [
                {
                    "amount": _limit_amount(x["amount"], currency, x["interval"]),
                    "interval": x["interval"],
                }
                for x in raw
            ],
            company,
            currency,
        )
    for key in ("allowed_categories", "blocked_categories"):
        if key in fields:
            out[key] = _check_categories(session, company_id, fields[key])
    for key in ("allowed_mccs", "blocked_mccs"):
        if key in fields:
            out[key] = sorted(set(fields[key] or []))
    return out


def _check_not_both(allowed: list[str], blocked: list[str], *, what: str = "category") -> None:
    both = [c for c in allowed if c in blocked]
    if both:
        code = "conflicting_categories" if what == "category" else "conflicting_mccs"
        raise ValidationFailed(f"{what} {both[0]} is both allowed and blocked", code=code)


def issue(
    session: Session, *, actor: User, body: CardCreate, key: bytes, now: datetime
) -> CardIssued:
    fields = body.model_dump()
    holder = referenced(session, User, body.user_id, actor.company_id, what="user_id")
    if not holder.is_active:
        # Every authorization on it would decline (`cardholder_inactive`).
        raise ValidationFailed(
            "user_id is a deactivated user: a card for them could not be used",
            code="invalid_user",
        )
    _not_for_self(actor, holder.id, "issues a card")
    company = companies_service.get_company_or_404(session, actor.company_id)
    controls = _controls(
        session,
        company,
        {**fields, "spending_limits": fields.get("spending_limits") or []},
        fields["currency"],
    )
    for key_name in ("allowed_categories", "blocked_categories"):
        controls[key_name] = controls.get(key_name) or []
    _check_not_both(controls["allowed_categories"], controls["blocked_categories"])
    controls["allowed_mccs"] = controls.get("allowed_mccs") or []
    controls["blocked_mccs"] = controls.get("blocked_mccs") or []
    _check_not_both(controls["allowed_mccs"], controls["blocked_mccs"], what="merchant code")
    card, number, cvc = cards_service.issue_card(
        session, company_id=actor.company_id, actor_id=actor.id, fields=controls, key=key, now=now
    )
    notifications.notify_owner(
        session,
        card,
        kind="card.issued",
        message=f"A card ending in {card.last4} was issued to you",
    )
    return CardIssued(**CardRead.model_validate(card).model_dump(), number=number, cvc=cvc)


def _visible_card(
    session: Session, actor: User, card_id: uuid.UUID, *, for_update: bool = False
) -> Card:
    card = cards_service.get_card_or_404(
        session, company_id=actor.company_id, card_id=card_id, for_update=for_update
    )
    if card.user_id != actor.id and not can(actor.role, Capability.manage_cards):
        raise NotFound(cards_service.CARD_NOT_FOUND)
    return card


def list_cards(
    session: Session,
    *,
    actor: User,
    user_id: uuid.UUID | None,
    status: CardStatus | None,
    page: SyncParams,
) -> Page[CardRead]:
    """Cardholders see their own cards; finance and admins every card of the company."""
    if not can(actor.role, Capability.manage_cards):
        user_id = actor.id
    listed = cards_service.list_cards(
        session, company_id=actor.company_id, user_id=user_id, status=status, page=page
    )
    return listed.page([CardRead.model_validate(c) for c in listed.rows])


def get_card(session: Session, *, actor: User, card_id: uuid.UUID) -> CardRead:
    return CardRead.model_validate(_visible_card(session, actor, card_id))


def update(session: Session, *, actor: User, card_id: uuid.UUID, body: CardUpdate) -> CardRead:
    changes = body.changes()
    card = _visible_card(session, actor, card_id, for_update=True)
    _not_for_self(actor, card.user_id, "changes the controls of a card")
    company = companies_service.get_company_or_404(session, actor.company_id)
    controls = _controls(session, company, changes, card.currency)
    for key_name in ("allowed_categories", "blocked_categories", "allowed_mccs", "blocked_mccs"):
        if key_name in controls and controls[key_name] is None:
            controls[key_name] = []
    _check_not_both(
        controls.get("allowed_categories", card.allowed_categories),
        controls.get("blocked_categories", card.blocked_categories),
    )
    _check_not_both(
        controls.get("allowed_mccs", card.allowed_mccs),
        controls.get("blocked_mccs", card.blocked_mccs),
        what="merchant code",
    )
    cards_service.update_card(session, card, actor_id=actor.id, changes=controls)
    if "spending_limits" in changes:
        notifications.notify_owner(
            session,
            card,
            kind="card.limits_changed",
            message=f"The limits of your card ending in {card.last4} changed",
        )
    return CardRead.model_validate(card)


def change_status(
    session: Session, *, actor: User, card_id: uuid.UUID, to: CardStatus, now: datetime
) -> CardRead:
    card = _visible_card(session, actor, card_id, for_update=True)
    if to is CardStatus.active:
        _not_for_self(actor, card.user_id, "unfreezes a card")
    cards_service.set_status(session, card, to, actor_id=actor.id, now=now)
    verb = {
        CardStatus.frozen: "frozen",
        CardStatus.active: "unfrozen",
        CardStatus.cancelled: "cancelled",
    }[to]
    notifications.notify_owner(
        session, card, kind=f"card.{verb}", message=f"Your card ending in {card.last4} was {verb}"
    )
    return CardRead.model_validate(card)


def apply_company_maximums(session: Session, *, company: Company, actor_id: uuid.UUID) -> int:
    """After the company's ceilings change: every live card in the base currency is brought
    under them (the number of cards changed)."""
    changed = 0
    for card in cards_service.live_cards(
        session, company_id=company.id, currency=company.base_currency
    ):
        limits = within_maximums(card.spending_limits, company, card.currency, lower=True)
        if limits != card.spending_limits:
            cards_service.update_card(
                session, card, actor_id=actor_id, changes={"spending_limits": limits}
            )
            changed += 1
    return changed


# --- authorizations -----------------------------------------------------------------------------


def _answer(auth: CardAuthorization) -> AuthorizationResult:
    return AuthorizationResult(
        approved=auth.approved, decline_reason=auth.decline_reason, spend_id=auth.spend_id
    )


def _category(
    session: Session, company_id: uuid.UUID, category_id: uuid.UUID | None
) -> uuid.UUID | None:
    """The merchant category if it is one of this company's, else none."""
    if category_id is None:
        return None
    try:
        return catalog_service.get_or_404(
            session, Category, company_id=company_id, item_id=category_id
        ).id
    except NotFound:
        return None


def _vendor_id(session: Session, company_id: uuid.UUID, merchant: str) -> uuid.UUID | None:
    vendor = catalog_service.find_by_name(session, Vendor, company_id=company_id, name=merchant)
    return vendor.id if vendor else None


def authorize(
    session: Session,
    *,
    caller: companies_service.WebhookCaller,
    body: AuthorizationRequest,
    key: bytes,
    now: datetime,
) -> AuthorizationResult:
    """Approve or decline one purchase, exactly once per `authorization_id`.

    A retry is answered from the first decision before anything else. Everything that does not
    depend on the card's running totals (the policies, the merchant's category and vendor) is
    worked out next; then the card row is locked, and the limits are checked and the
    authorization recorded under that lock, so concurrent purchases on one card never approve
    more than its limits allow. A retry that arrives while its first attempt is still undecided
    is decided again, and fails to record on the unique `authorization_id`: it is undone whole
    and answered with the first decision.

    A card that declined last time is first checked without its lock (a decline needs none),
    and a decline there skips the policies and the search for a first answer: a retry fails to
    record, as above. A card with its usage row in place is approved without the card's lock:
    the usage row's conditional UPDATE is the only place its authorizations wait for each other
    (`_approve_with_one_update`); the locked path decides what that cannot.

    The caller's secret comes unchecked when this process knew it (`WebhookCaller`): a decline
    without the lock checks it on the card's read, and anything else reads the company first
    (`company_of`), which checks it. Nothing is answered before it is checked.
    """
    company_id = caller.company_id
    declining = cards_service.declining(company_id, body.card_id)
    company = None if declining else companies_service.company_of(session, caller)
    if not declining and (retried := _first_answer(session, company_id, body)) is not None:
        return retried
    known = cards_service.holder_and_currency(session, company_id=company_id, card_id=body.card_id)
    if known is None:
        if company is None:
            companies_service.company_of(session, caller)  # 401 unless the secret is still good
        # An unknown card, or another company's: nothing of ours to record it against.
        return AuthorizationResult(approved=False, decline_reason="unknown_card")
    holder_id, card_currency = known
    amount = quantize(body.amount, body.currency)
    # What the card is charged, in its own currency: the limits count this. A purchase in
    # another currency carries it (the network's conversion); without it, it is declined.
    billed = amount if body.billing_amount is None else quantize(body.billing_amount, card_currency)
    category_id = _category(session, company_id, body.category_id)
    if declining:
        # The card declined last time (at a limit, frozen): likely again, and a decline needs no
        # lock. Read without it, the card's committed state can only be behind on approvals
        # being made (never ahead: usage only grows within a window), so a limit it passes now
        # it passes whatever those add; a status or a control is as committed at this moment.
        # Only an approval (which must count under the lock) or a window to add up (whose row
        # is written under the lock) goes on to take it. The declines of a card at its limit
        # then share its row (the authorization's foreign key check takes a shared lock on it)
        # instead of queueing for it one at a time. The policies come last among the reasons,
        # so such a decline does not need them (nor the vendor they may ask about), nor the
        # company beyond its time zone and secret, read with the card. Nor does it look for a
        # first answer: a retry fails to record on the unique `authorization_id`, and is
        # answered with the first decision (as a retry racing its first attempt is).
        found = cards_service.card_for_decline(session, company_id=company_id, card_id=body.card_id)
        if found is None or not caller.holds_secret(*found.secret):
            companies_service.company_of(session, caller)  # 401 unless the secret is still good
        if found is None:
            raise NotFound(cards_service.CARD_NOT_FOUND)
        card = found.card
        usage = cards_service.LimitUsage(
            session, card, found.usage, now=now, tz=ZoneInfo(found.timezone)
        )
        reason = decline_reason(card, found.holder_active, body, billed, category_id, None, usage)
        if reason is not None and not usage.added_up:
            return _record(session, card, body, amount, billed, category_id, reason, None, now)
        holder = users_service.active_user(session, company_id=company_id, user_id=holder_id)
        company = companies_service.company_of(session, caller)
        tz = ZoneInfo(company.timezone)
        if (retried := _first_answer(session, company_id, body)) is not None:
            return retried
    else:
        assert company is not None
        tz = ZoneInfo(company.timezone)
        fast = _approve_with_one_update(
            session, company, body, amount, billed, category_id, card_currency, now, tz
        )
        if fast is not None:
            return fast
        holder = users_service.active_user(session, company_id=company_id, user_id=holder_id)

    decision: engine.Decision | None = None
    purchase = None
    if holder is not None and (card_currency == body.currency or body.billing_amount is not None):
        purchase = _purchase(
            session, holder, company, body, amount, (billed, card_currency), category_id, now, tz
        )
        if purchase is not None:
            decision = spend_flows.decide_card_spend(
                session, holder=holder, purchase=purchase, company=company
            )
    card, usage_row = cards_service.lock_card_with_usage(
        session, company_id=company_id, card_id=body.card_id
    )
    usage = cards_service.LimitUsage(session, card, usage_row, now=now, tz=tz)
    reason = decline_reason(card, holder is not None, body, billed, category_id, decision, usage)
    if reason is None and purchase is None:
        reason = "no_rate"  # the billed currency has no rate to the base currency
    cards_service.note_decision(company_id, card.id, declined=reason is not None)
    spend_id = None
    if reason is None:
        assert holder is not None
        assert decision is not None
        assert purchase is not None
        spend_flows.create_card_spend(
            session, holder=holder, spend=purchase, decision=decision, company=company
        )
        spend_id = purchase.id
        usage.add(billed)
    else:
        usage.declined()
    return _record(session, card, body, amount, billed, category_id, reason, spend_id, now)


def _purchase(
    session: Session,
    holder: User,
    company: Company,
    body: AuthorizationRequest,
    amount: Decimal,
    billed: tuple[Decimal, str],
    category_id: uuid.UUID | None,
    now: datetime,
    tz: ZoneInfo,
) -> Spend | None:
    """The spend the purchase would be (not written); None without a rate for what was billed."""
    return spend_flows.card_purchase(
        session,
        holder=holder,
        fields={
            "amount": amount,
            "currency": body.currency,
            "spend_date": now.astimezone(tz).date(),
            "description": body.merchant_name,
            "category_id": category_id,
            "mcc": body.mcc,
            "vendor_id": _vendor_id(session, company.id, body.merchant_name),
            "card_id": body.card_id,
        },
        base_currency=company.base_currency,
        billed=billed,
    )


def _approve_with_one_update(
    session: Session,
    company: Company,
    body: AuthorizationRequest,
    amount: Decimal,
    billed: Decimal,
    category_id: uuid.UUID | None,
    card_currency: str,
    now: datetime,
    tz: ZoneInfo,
) -> AuthorizationResult | None:
    """An approval that waits for the card's other authorizations only from its usage row's
    conditional UPDATE (`cards.service.reserve`) to its commit.

    The card, its usage and holder are read unlocked; what the answer depends on besides the
    limits (status, holder, controls, policies) is decided from them, as a decline without the
    lock is (a status change waits for this transaction: the spend's and the authorization's
    foreign keys share-lock the card row until the commit). The spend and the authorization are
    written, and last the usage row is moved, if and only if every limit still allows it. None:
    the locked path decides instead (a usage row to add up, an unusual purchase, or a limit the
    UPDATE found passed: then this attempt is rolled back whole first)."""
    company_id = company.id
    card, usage_row, _holder = cards_service.card_usage_and_holder(
        session, company_id=company_id, card_id=body.card_id
    )
    if not cards_service.reservable(usage_row, now=now, tz=tz):
        return None
    holder = users_service.active_user(session, company_id=company_id, user_id=card.user_id)
    if holder is None or (card_currency != body.currency and body.billing_amount is None):
        return None
    purchase = _purchase(
        session, holder, company, body, amount, (billed, card_currency), category_id, now, tz
    )
    if purchase is None:
        return None
    decision = spend_flows.decide_card_spend(
        session, holder=holder, purchase=purchase, company=company
    )
    usage = cards_service.LimitUsage(session, card, usage_row, now=now, tz=tz)
    if decline_reason(card, holder is not None, body, billed, category_id, decision, usage):
        return None
    spend_flows.create_card_spend(
        session, holder=holder, spend=purchase, decision=decision, company=company
    )
    answer = _record(session, card, body, amount, billed, category_id, None, purchase.id, now)
    if answer.spend_id != purchase.id:
        return answer  # a retry decided concurrently: undone whole, the first answer given
    if not cards_service.reserve(session, card, billed, now=now, tz=tz):
        session.rollback()
        return None
    cards_service.note_decision(company_id, card.id, declined=False)
    return answer


def _first_answer(
    session: Session, company_id: uuid.UUID, body: AuthorizationRequest
) -> AuthorizationResult | None:
    """The answer already given to this `authorization_id`, if it is a retry."""
    existing = cards_service.find_authorization(
        session, company_id=company_id, authorization_id=body.authorization_id
    )
    return None if existing is None else _answer_retry(existing, body)


def _answer_retry(first: CardAuthorization, body: AuthorizationRequest) -> AuthorizationResult:
    """A retry is the same purchase: the same card, amount and currency. Another purchase
    under a used `authorization_id` is refused (422, as a reused Idempotency-Key is): answered
    with the first one's approval, it would be charged without its limits checked."""
    sent = (body.card_id, quantize(body.amount, body.currency), body.currency)
    if (first.card_id, first.amount, first.currency) != sent:
        raise ValidationFailed(
            "authorization_id was already used for another purchase (card, amount or currency)",
            code="authorization_id_reused",
        )
    return _answer(first)


def _record(
    session: Session,
    card: Card,
    body: AuthorizationRequest,
    amount: Decimal,
    billed: Decimal,
    category_id: uuid.UUID | None,
    reason: str | None,
    spend_id: uuid.UUID | None,
    now: datetime,
) -> AuthorizationResult:
    company_id = card.company_id  # read now: a rollback below expires the card
    try:
        cards_service.record_authorization(
            session,
            card=card,
            authorization_id=body.authorization_id,
            amount=amount,
            currency=body.currency,
            billed_amount=billed,
            merchant_name=body.merchant_name,
            merchant_country=body.merchant_country,
            mcc=body.mcc,
            category_id=category_id,
            decline_reason=reason,
            spend_id=spend_id,
            now=now,
        )
    except IntegrityError:
        # The same authorization_id decided concurrently (on this card or another of the
        # company's): all of this attempt (its spend too) is undone; the first decision answers.
        session.rollback()
        existing = cards_service.find_authorization(
            session, company_id=company_id, authorization_id=body.authorization_id
        )
        assert existing is not None
        return _answer_retry(existing, body)
    if reason is not None and cards_service.decline_notice_due(card.id, reason, now):
        shown = f"{quantize(amount, body.currency)} {body.currency}"
        notifications.notify(
            session,
            company_id=company_id,
            user_ids=[card.user_id],
            kind="card.declined",
            message=f"A purchase of {shown} at {body.merchant_name} was declined on your card "
            f"ending in {card.last4} ({reason})",
            entity_type="card",
            entity_id=card.id,
            context={
                "amount": amount,
                "currency": body.currency,
                "merchant": body.merchant_name,
                "reason": reason,
            },
        )
    return AuthorizationResult(approved=reason is None, decline_reason=reason, spend_id=spend_id)


def decline_reason(
    card: Card,
    holder_active: bool,
    body: AuthorizationRequest,
    billed: Decimal,
    category_id: uuid.UUID | None,
    decision: engine.Decision | None,
    usage: cards_service.LimitUsage,
) -> str | None:
    """Why a purchase is declined, the first reason in this order (None: approved): the card's
    state, its holder, the currency, the card's categories, its limits (on the amount `billed`
    to the card), then the policies."""
    if card.status == CardStatus.frozen:
        return "card_frozen"
    if card.status == CardStatus.cancelled:
        return "card_cancelled"
    if not holder_active:
        return "cardholder_inactive"
    if body.currency != card.currency and body.billing_amount is None:
        return "currency_mismatch"
    category = str(category_id) if category_id else None
    if card.allowed_categories and category not in card.allowed_categories:
        return "category_blocked"
    if category is not None and category in card.blocked_categories:
        return "category_blocked"
    if card.allowed_mccs and body.mcc not in card.allowed_mccs:
        return "mcc_blocked"
    if body.mcc is not None and body.mcc in card.blocked_mccs:
        return "mcc_blocked"
    exceeded = usage.exceeded(billed)
    if exceeded is not None:
        return f"spending_limit_exceeded:{exceeded}"
    if decision is not None and decision.outcome == "blocked":
        return "budget_exceeded" if decision.blocked_by_budget else "policy_blocked"
    return None


def list_authorizations(
    session: Session,
    *,
    actor: User,
    card_id: uuid.UUID | None,
    approved: bool | None,
    page: SyncParams,
) -> Page[AuthorizationRead]:
    """Every authorization of the company's cards, approved and declined (finance, admins), or
    of the caller's own cards."""
    own = (
        None
        if can(actor.role, Capability.manage_cards)
        else cards_service.card_ids_of(session, company_id=actor.company_id, user_id=actor.id)
    )
    listed = cards_service.list_authorizations(
        session,
        company_id=actor.company_id,
        card_ids=own,
        card_id=card_id,
        approved=approved,
        page=page,
    )
    return listed.page([AuthorizationRead.model_validate(a) for a in listed.rows])


def history(
    session: Session,
    *,
    actor: User,
    card_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    types: frozenset[str] | None,
    approved: bool | None,
    include_declined: bool,
    date_from: date | None,
    date_to: date | None,
    merchant: str | None,
    page: SyncParams,
) -> Page[CardTransactionRead]:
    """Every authorization (with its answer) and what followed it, on the company's cards
    (finance, admins) or the caller's own; a card or holder the caller may not see is a 404."""
    manager = can(actor.role, Capability.manage_cards)
    card_ids: list[uuid.UUID] | None = None
    if card_id is not None:
        card_ids = [_visible_card(session, actor, card_id).id]
    elif not manager or user_id is not None:
        holder = actor.id if not manager else user_id
        assert holder is not None
        card_ids = cards_service.card_ids_of(session, company_id=actor.company_id, user_id=holder)
    tz = ZoneInfo(companies_service.get_company_or_404(session, actor.company_id).timezone)
    listed = cards_service.history(
        session,
        company_id=actor.company_id,
        card_ids=card_ids,
        types=types,
        approved=approved,
        include_declined=include_declined,
        date_from=_local_midnight(date_from, tz),
        date_to=_local_midnight(date_to + timedelta(days=1), tz) if date_to else None,
        merchant=merchant,
        page=page,
    )
    return listed.page([_history_row(row) for row in listed.rows])


def _local_midnight(day: date | None, tz: ZoneInfo) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=tz)


def _history_row(row: Any) -> CardTransactionRead:
    fields = dict(row._mapping)
    kind = cards_service.HISTORY_TYPES[int(fields["type"])]
    is_authorization = kind == "authorization"
    hold = None
    if is_authorization:
        if fields["approved"] and fields["hold_closed_at"] is None:
            hold = max(fields["billed_amount"] - fields["captured"] - fields["reversed"], 0)
        else:
            hold = Decimal(0)
    return CardTransactionRead(
        id=fields["id"],
        type=kind,
        card_id=fields["card_id"],
        network_id=fields["network_id"],
        authorization_id=fields["authorization_id"],
        amount=fields["amount"],
        currency=fields["currency"],
        billed_amount=fields["billed_amount"],
        billed_currency=fields["billed_currency"],
        merchant_name=fields["merchant_name"],
        merchant_country=fields["merchant_country"],
        mcc=fields["mcc"],
        approved=fields["approved"] if is_authorization else None,
        decline_reason=fields["decline_reason"],
        spend_id=fields["spend_id"],
        hold=hold,
        captured=fields["captured"] if is_authorization else None,
        created_at=fields["created_at"],
    )
