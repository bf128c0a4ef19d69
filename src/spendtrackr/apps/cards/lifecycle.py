"""What follows an approved authorization: captures (clearing), reversals (the hold released),
refunds (money back), and holds that expire.

Every event is taken under the card's lock, as authorizations are, and moves the card's usage by
exactly what it changes: an approval counts its hold plus what it captured minus what was refunded
(`cards.service.usage_of`), in the limit windows that hold the authorization's own time. Each
network id is taken once per kind: a retry gets the first answer, another event under a used id
is refused (422 `network_id_reused`).

The spend follows the money: its amount becomes what was captured (booked again for the
difference when it was booked already); a refund is a credit spend (a negative amount) with a
credit journal; an authorization reversed in full before any capture voids its pending spend, or
credits an approved one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.cards import service as cards_service
from spendtrackr.apps.cards.models import (
    Card,
    CardAuthorization,
    CardTransaction,
    TransactionKind,
)
from spendtrackr.apps.cards.schemas import (
    CaptureRequest,
    CardTransactionRead,
    RefundRequest,
    ReversalRequest,
)
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.spends import flows as spend_flows
from spendtrackr.core.config import get_settings
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import session_scope, utcnow
from spendtrackr.core.errors import Conflict, ValidationFailed


class NetworkIdReused(ValidationFailed):
    code = "network_id_reused"


def _billed(card: Card, currency: str, amount: Decimal, billing: Decimal | None) -> Decimal:
    """What the card is charged for `amount`: the network's billing amount, or the amount itself
    in the card's currency (422 `billing_amount_required` otherwise)."""
    if billing is not None:
        return quantize(billing, card.currency)
    if currency != card.currency:
        raise ValidationFailed(
            f"billing_amount is required for an amount in {currency} on a {card.currency} card",
            code="billing_amount_required",
        )
    return quantize(amount, card.currency)


def _approved_authorization(
    session: Session, company: Company, authorization_id: str, now: datetime
) -> tuple[Card, CardAuthorization, cards_service.LimitUsage]:
    """The authorization with its card locked (and the card's usage); 422 when the company has
    no such authorization, 409 when it was declined."""
    found = cards_service.find_authorization(
        session, company_id=company.id, authorization_id=authorization_id
    )
    if found is None:
        raise ValidationFailed(
            f"authorization_id {authorization_id!r} is not one of this company's",
            code="unknown_authorization",
        )
    card, usage = _lock(session, company, found.card_id, now)
    auth = cards_service.lock_authorization(
        session, company_id=company.id, authorization_id=authorization_id
    )
    assert auth is not None
    if not auth.approved:
        raise Conflict(
            f"authorization {authorization_id!r} was declined: nothing follows it",
            code="authorization_declined",
        )
    return card, auth, usage


def _lock(
    session: Session, company: Company, card_id: uuid.UUID, now: datetime
) -> tuple[Card, cards_service.LimitUsage]:
    card, row = cards_service.lock_card_with_usage(session, company_id=company.id, card_id=card_id)
    usage = cards_service.LimitUsage(session, card, row, now=now, tz=ZoneInfo(company.timezone))
    return card, usage


def _once(
    session: Session,
    company: Company,
    kind: TransactionKind,
    network_id: str,
    same: Callable[[CardTransaction], bool],
) -> CardTransaction | None:
    """The first answer to this network id, if it is a retry (422 if it is another event)."""
    first = cards_service.find_transaction(
        session, company_id=company.id, kind=kind, network_id=network_id
    )
    if first is not None and not same(first):
        raise NetworkIdReused(f"{kind}_id {network_id!r} was already used for another {kind}")
    return first


def _record(
    session: Session,
    card: Card,
    transaction: CardTransaction,
    retry: Callable[[], Any],
    authorization_id: str | None,
) -> CardTransactionRead:
    try:
        cards_service.record_transaction(session, transaction, card)
    except IntegrityError:
        # The same network id taken concurrently: all of this attempt is undone.
        session.rollback()
        return retry()  # type: ignore[no-any-return]
    return read_transaction(transaction, authorization_id=authorization_id)


def capture(
    session: Session, *, company: Company, body: CaptureRequest, now: datetime
) -> CardTransactionRead:
    """Clear all, part, or (within CARD_CAPTURE_TOLERANCE_PERCENT of the hold) more of an
    approval; several captures add up. The spend's amount becomes what was captured."""
    card, auth, usage = _approved_authorization(session, company, body.authorization_id, now)
    amount = quantize(body.amount, body.currency)
    first = _once(
        session,
        company,
        TransactionKind.capture,
        body.capture_id,
        lambda t: (t.authorization_ref, t.amount, t.currency) == (auth.id, amount, body.currency),
    )
    if first is not None:
        return read_transaction(first, authorization_id=auth.authorization_id)
    if body.currency != auth.currency:
        raise ValidationFailed(
            f"currency must be the authorization's ({auth.currency})", code="currency_mismatch"
        )
    billed = _billed(card, body.currency, amount, body.billing_amount)
    tolerance = get_settings().card_capture_tolerance_percent
    ceiling = quantize(auth.billed_amount * (100 + tolerance) / 100, card.currency)
    if auth.captured + billed > ceiling:
        money = partial(quantize, currency=card.currency)
        raise ValidationFailed(
            f"captures would reach {money(auth.captured + billed)} {card.currency}, more than "
            f"the {tolerance}% over the authorized {money(auth.billed_amount)} allows "
            f"({ceiling})",
            code="over_capture",
        )
    before = cards_service.usage_of(auth)
    auth.captured += billed
    auth.captured_amount += amount
    if cards_service.hold_of(auth) == 0 and auth.hold_closed_at is None:
        auth.hold_closed_at = now
    usage.add(cards_service.usage_of(auth) - before, at=auth.created_at)
    if auth.spend_id is not None:
        spend_flows.card_captured(
            session,
            spend_id=auth.spend_id,
            company=company,
            amount=auth.captured_amount,
            billed=(auth.captured, card.currency),
        )
    transaction = _following(
        TransactionKind.capture, body.capture_id, card, auth, amount, body.currency, billed, now
    )
    again = partial(capture, session, company=company, body=body, now=now)
    return _record(session, card, transaction, again, body.authorization_id)


def reverse(
    session: Session, *, company: Company, body: ReversalRequest, now: datetime
) -> CardTransactionRead:
    """Release all (no amount) or part of what an approval still holds (422 `over_reversal`
    beyond it). Released in full before any capture, the purchase did not happen: a pending
    spend is cancelled, an approved one credited."""
    card, auth, usage = _approved_authorization(session, company, body.authorization_id, now)
    held = cards_service.hold_of(auth)
    if body.amount is None:
        billed = held
        amount = auth.amount if auth.captured == 0 else quantize(held, card.currency)
        currency = auth.currency if auth.captured == 0 else card.currency
    else:
        currency = body.currency or auth.currency
        if currency != auth.currency:
            raise ValidationFailed(
                f"currency must be the authorization's ({auth.currency})",
                code="currency_mismatch",
            )
        amount = quantize(body.amount, currency)
        billed = _billed(card, currency, amount, body.billing_amount)
    first = _once(
        session,
        company,
        TransactionKind.reversal,
        body.reversal_id,
        lambda t: (
            t.authorization_ref == auth.id
            and (body.amount is None or (t.amount, t.currency) == (amount, currency))
        ),
    )
    if first is not None:
        return read_transaction(first, authorization_id=auth.authorization_id)
    if billed > held or billed <= 0:
        raise ValidationFailed(
            f"the authorization holds {quantize(held, card.currency)} {card.currency}: a "
            f"reversal of {billed} is more",
            code="over_reversal",
        )
    before = cards_service.usage_of(auth)
    auth.reversed += billed
    if cards_service.hold_of(auth) == 0:
        auth.hold_closed_at = now
    usage.add(cards_service.usage_of(auth) - before, at=auth.created_at)
    voided = auth.captured == 0 and cards_service.hold_of(auth) == 0
    if voided and auth.spend_id is not None:
        spend_flows.card_voided(
            session,
            spend_id=auth.spend_id,
            company=company,
            on=now.astimezone(ZoneInfo(company.timezone)).date(),
        )
    transaction = _following(
        TransactionKind.reversal, body.reversal_id, card, auth, amount, currency, billed, now
    )
    again = partial(reverse, session, company=company, body=body, now=now)
    return _record(session, card, transaction, again, body.authorization_id)


def refund(
    session: Session, *, company: Company, body: RefundRequest, now: datetime
) -> CardTransactionRead:
    """Money back: for an authorization, up to what it captured (422 `over_refund`), or for the
    card alone. The limits count it back, and a credit spend (negative) carries it to the
    reports and the ledger."""
    auth: CardAuthorization | None = None
    if body.authorization_id is not None:
        card, auth, usage = _approved_authorization(session, company, body.authorization_id, now)
    else:
        assert body.card_id is not None
        if (
            cards_service.holder_and_currency(session, company_id=company.id, card_id=body.card_id)
            is None
        ):
            raise ValidationFailed(
                "card_id is not one of this company's cards", code="invalid_card"
            )
        card, usage = _lock(session, company, body.card_id, now)
    amount = quantize(body.amount, body.currency)
    first = _once(
        session,
        company,
        TransactionKind.refund,
        body.refund_id,
        lambda t: (t.card_id, t.amount, t.currency) == (card.id, amount, body.currency),
    )
    if first is not None:
        return read_transaction(first, authorization_id=body.authorization_id)
    billed = _billed(card, body.currency, amount, body.billing_amount)
    if auth is not None:
        if body.currency != auth.currency:
            raise ValidationFailed(
                f"currency must be the authorization's ({auth.currency})",
                code="currency_mismatch",
            )
        if auth.refunded + billed > auth.captured:
            raise ValidationFailed(
                f"{quantize(auth.captured - auth.refunded, card.currency)} {card.currency} of "
                "the authorization is "
                f"captured and not refunded: a refund of {billed} is more",
                code="over_refund",
            )
        before = cards_service.usage_of(auth)
        auth.refunded += billed
        usage.add(cards_service.usage_of(auth) - before, at=auth.created_at)
    else:
        usage.add(-billed)
    transaction = _following(
        TransactionKind.refund, body.refund_id, card, auth, amount, body.currency, billed, now
    )
    if body.merchant_name is not None:
        transaction.merchant_name = body.merchant_name
    transaction.merchant_country = body.merchant_country or transaction.merchant_country
    transaction.mcc = body.mcc or transaction.mcc
    transaction.spend_id = spend_flows.card_refunded(
        session,
        company=company,
        holder_id=card.user_id,
        card_id=card.id,
        purchase_id=auth.spend_id if auth is not None else None,
        amount=amount,
        currency=body.currency,
        billed=(billed, card.currency),
        merchant=transaction.merchant_name,
        mcc=transaction.mcc,
        on=now.astimezone(ZoneInfo(company.timezone)).date(),
    )
    again = partial(refund, session, company=company, body=body, now=now)
    return _record(session, card, transaction, again, body.authorization_id)


def _following(
    kind: TransactionKind,
    network_id: str,
    card: Card,
    auth: CardAuthorization | None,
    amount: Decimal,
    currency: str,
    billed: Decimal,
    now: datetime,
) -> CardTransaction:
    """An event after `auth` (none: a refund to the card alone), with its merchant."""
    return CardTransaction(
        id=uuid.uuid4(),
        company_id=card.company_id,
        card_id=card.id,
        kind=kind,
        network_id=network_id,
        authorization_ref=auth.id if auth is not None else None,
        amount=amount,
        currency=currency,
        billed_amount=billed,
        billed_currency=card.currency,
        merchant_name=auth.merchant_name if auth is not None else "",
        merchant_country=auth.merchant_country if auth is not None else None,
        mcc=auth.mcc if auth is not None else None,
        spend_id=auth.spend_id if auth is not None else None,
        created_at=now,
    )


_SHOWN = (
    "id",
    "card_id",
    "network_id",
    "amount",
    "currency",
    "billed_amount",
    "billed_currency",
    "merchant_name",
    "merchant_country",
    "mcc",
    "spend_id",
    "created_at",
)


def read_transaction(t: CardTransaction, *, authorization_id: str | None) -> CardTransactionRead:
    return CardTransactionRead(
        **{name: getattr(t, name) for name in _SHOWN},
        type=t.kind.value,
        authorization_id=authorization_id,
        approved=None,
        decline_reason=None,
    )


# --- expiry ---------------------------------------------------------------------------------------


def expire_holds(factory: sessionmaker[Session], *, now: datetime | None = None) -> int:
    """Release the holds older than CARD_HOLD_DAYS that nothing captured or reversed: each
    under its card's lock, so the limits count exactly what is still held. The number released."""
    at = now or utcnow()
    before = at - timedelta(days=get_settings().card_hold_days)
    with session_scope(factory) as session:
        stale = cards_service.stale_holds(session, before=before)
    released = 0
    for company_id, card_id, authorization_id in stale:
        with session_scope(factory) as session:
            company = session.get(Company, company_id)
            assert company is not None
            card, row = cards_service.lock_card_with_usage(
                session, company_id=company_id, card_id=card_id
            )
            usage = cards_service.LimitUsage(
                session, card, row, now=at, tz=ZoneInfo(company.timezone)
            )
            auth = cards_service.lock_authorization(
                session, company_id=company_id, authorization_id=authorization_id
            )
            if auth is None or auth.hold_closed_at is not None:
                continue  # closed meanwhile
            held = cards_service.hold_of(auth)
            auth.hold_closed_at = at
            usage.add(-held, at=auth.created_at)
            audit.record_change(
                session,
                card,
                "card.hold_expired",
                actor_id=None,
                metadata={"authorization_id": authorization_id, "released": held},
            )
            released += 1
    return released
