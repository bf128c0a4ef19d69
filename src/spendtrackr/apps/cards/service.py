"""Cards: issuing, controls, status changes, and the limit accounting of authorizations."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    false,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, aliased

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.cards.models import (
    Card,
    CardAuthorization,
    CardStatus,
    CardTransaction,
    CardUsage,
    TransactionKind,
)
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.users.models import User
from spendtrackr.core.db import apply_changes, exact_sum, get_in_company_or_404, id_param, plain
from spendtrackr.core.errors import InvalidTransition, NotFound
from spendtrackr.core.lru import LruCache
from spendtrackr.core.pagination import Listed, SyncParams, listing

CARD_NOT_FOUND = "Card not found"
BIN = "453201"  # a test-range Visa prefix: these are not real card numbers

TRANSITIONS: dict[CardStatus, frozenset[CardStatus]] = {
    CardStatus.active: frozenset({CardStatus.frozen, CardStatus.cancelled}),
    CardStatus.frozen: frozenset({CardStatus.active, CardStatus.cancelled}),
    CardStatus.cancelled: frozenset(),  # final
}


def luhn_check_digit(partial: str) -> str:
    total = 0
    for i, digit in enumerate(reversed(partial)):
        value = int(digit)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


def new_number() -> str:
    body = BIN + "".join(secrets.choice("0123456789") for _ in range(9))
    return body + luhn_check_digit(body)


def number_hash(number: str, key: bytes) -> str:
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()


def issue_card(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    fields: dict[str, Any],
    key: bytes,
    now: datetime,
) -> tuple[Card, str, str]:
    """A new card; returns it with its number and CVC, which are not kept anywhere."""
    number = new_number()
    cvc = f"{secrets.randbelow(1000):03d}"
    card = Card(
        id=uuid.uuid4(),
        company_id=company_id,
        status=CardStatus.active,
        last4=number[-4:],
        exp_month=now.month,
        exp_year=now.year + 3,
        number_hash=number_hash(number, key),
        **fields,
    )
    session.add(card)
    session.flush()
    audit.record_change(
        session,
        card,
        "card.issued",
        actor_id=actor_id,
        metadata={
            "user_id": card.user_id,
            "last4": card.last4,
            "currency": card.currency,
            "spending_limits": card.spending_limits,
        },
    )
    return card, number, cvc


def get_card_or_404(
    session: Session, *, company_id: uuid.UUID, card_id: uuid.UUID, for_update: bool = False
) -> Card:
    return get_in_company_or_404(
        session, Card, card_id, company_id, detail=CARD_NOT_FOUND, for_update=for_update
    )


def list_cards(
    session: Session,
    *,
    company_id: uuid.UUID,
    user_id: uuid.UUID | None,
    status: CardStatus | None,
    page: SyncParams,
) -> Listed:
    stmt = select(Card).where(Card.company_id == company_id)
    if user_id is not None:
        stmt = stmt.where(Card.user_id == user_id)
    if status is not None:
        stmt = stmt.where(Card.status == status)
    stmt = stmt.order_by(Card.created_at.desc(), Card.id)
    return listing(session, stmt, page, updated=Card.updated_at, ident=Card.id)


def live_cards(session: Session, *, company_id: uuid.UUID, currency: str) -> list[Card]:
    """The company's cards that can still be used (not cancelled) in this currency, locked."""
    return list(
        session.scalars(
            select(Card)
            .where(
                Card.company_id == company_id,
                Card.currency == currency,
                Card.status != CardStatus.cancelled,
            )
            .order_by(Card.id)
            .with_for_update()
        )
    )


def update_card(
    session: Session, card: Card, *, actor_id: uuid.UUID, changes: dict[str, Any]
) -> None:
    if card.status == CardStatus.cancelled:
        raise InvalidTransition("A cancelled card cannot be changed")
    diff = apply_changes(card, changes)
    audit.record_change(
        session, card, "card.updated", actor_id=actor_id, metadata={"changes": diff}
    )


def set_status(
    session: Session, card: Card, to: CardStatus, *, actor_id: uuid.UUID, now: datetime
) -> None:
    current = CardStatus(card.status)
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(f"The card is {current}: it cannot become {to}")
    card.status = to
    if to is CardStatus.cancelled:
        card.cancelled_at = now
    action = {
        CardStatus.frozen: "frozen",
        CardStatus.active: "unfrozen",
        CardStatus.cancelled: "cancelled",
    }[to]
    audit.record_change(session, card, f"card.{action}", actor_id=actor_id)


# --- limits -------------------------------------------------------------------------------------


def window_start(interval: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """Start of the calendar window holding `now`, in the company's time zone (None: all time)."""
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "daily":
        start = midnight
    elif interval == "weekly":  # weeks start on Monday (ISO 8601)
        start = midnight - timedelta(days=local.weekday())
    elif interval == "monthly":
        start = midnight.replace(day=1)
    elif interval == "yearly":
        start = midnight.replace(month=1, day=1)
    else:
        return None
    # Aware arithmetic is wall-clock arithmetic: the start is local midnight even across a DST
    # change inside the window, and the comparison in SQL is done in UTC.
    return start


def hold_of(auth: CardAuthorization) -> Decimal:
    """What an approval still holds on the card: the part neither captured nor reversed, until
    the hold expires."""
    if not auth.approved or auth.hold_closed_at is not None:
        return Decimal(0)
    return max(auth.billed_amount - auth.captured - auth.reversed, Decimal(0))


def usage_of(auth: CardAuthorization) -> Decimal:
    """What an authorization counts against the card's limits: its hold, plus what was
    captured, minus what was refunded."""
    if not auth.approved:
        return Decimal(0)
    return hold_of(auth) + auth.captured - auth.refunded


def _usage_sum(dialect: str) -> Any:
    a = CardAuthorization
    hold = case(
        (
            and_(a.hold_closed_at.is_(None), a.billed_amount > a.captured + a.reversed),
            a.billed_amount - a.captured - a.reversed,
        ),
        else_=0,
    )
    return exact_sum(case((a.approved.is_(True), hold + a.captured - a.refunded), else_=0), dialect)


def approved_since(session: Session, *, card_id: uuid.UUID, since: datetime | None) -> Decimal:
    """Added up from the authorizations (and the refunds no authorization was found for)
    themselves: what `LimitUsage` falls back on."""
    dialect = session.get_bind().dialect.name
    used = select(_usage_sum(dialect)).where(CardAuthorization.card_id == card_id)
    refunds = select(exact_sum(CardTransaction.billed_amount, dialect)).where(
        CardTransaction.card_id == card_id,
        CardTransaction.kind == TransactionKind.refund,
        CardTransaction.authorization_ref.is_(None),
    )
    if since is not None:
        used = used.where(CardAuthorization.created_at >= since)
        refunds = refunds.where(CardTransaction.created_at >= since)
    return Decimal(session.scalar(used) or 0) - Decimal(session.scalar(refunds) or 0)


# A card's holder and currency never change (a card is reissued instead; CardUpdate has neither),
# so the process remembers them per (company, card): an authorization needs them before it takes
# the card's lock, to decide its policies, and on a known card that costs no query.
_HOLDER_AND_CURRENCY = select(Card.user_id, Card.currency).where(
    Card.id == id_param("card_id"), Card.company_id == id_param("company_id")
)
_holders: LruCache[tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, str]] = LruCache(10_000)


def holder_and_currency(
    session: Session, *, company_id: uuid.UUID, card_id: uuid.UUID
) -> tuple[uuid.UUID, str] | None:
    """The card's holder and currency; None if the company has no such card."""
    key = (company_id, card_id)
    known = _holders.get(key)
    if known is None:
        row = session.execute(
            _HOLDER_AND_CURRENCY, {"card_id": card_id, "company_id": company_id}
        ).one_or_none()
        if row is None:
            return None
        known = (row.user_id, row.currency)
        _holders.put(key, known)
    return known


WINDOWS = ("daily", "weekly", "monthly", "yearly")
# The card and its usage row in one round trip. Locked, as an authorization reads them: it holds
# the card's lock from there to its commit, and every statement inside that span makes the others
# wait. Unlocked, with the holder, as an approval without the card's lock reads them; unlocked,
# with less, as a decline that needs no lock (`declining` below).
_CARD_WITH_USAGE = (
    select(Card, CardUsage)
    .outerjoin(CardUsage, CardUsage.card_id == Card.id)
    .where(Card.id == id_param("card_id"), Card.company_id == id_param("company_id"))
    .execution_options(populate_existing=True)  # the card may have been read before
)
_LOCK_WITH_USAGE = _CARD_WITH_USAGE.with_for_update()
# Unlocked, the holder comes in the same round trip (whether they are active is a reason to
# decline, and an approval's spend is theirs); locked, a join would lock the holder's row too.
_CARD_WITH_USAGE_AND_HOLDER = _CARD_WITH_USAGE.add_columns(User).join(User, User.id == Card.user_id)
# A decline without the lock needs of the holder only whether they are active, and of the company
# only its time zone (the limits' windows) and its card network secret, which the route may not
# have checked yet.
_DECLINABLE = (
    _CARD_WITH_USAGE.add_columns(
        User.is_active,
        Company.timezone,
        Company.webhook_secret_hash,
        Company.previous_webhook_secret_hash,
        Company.previous_webhook_secret_expires_at,
    )
    .outerjoin(User, and_(User.id == Card.user_id, User.company_id == Card.company_id))
    .join(Company, Company.id == Card.company_id)
)


def reservable(row: CardUsage | None, *, now: datetime, tz: ZoneInfo) -> bool:
    """Whether `reserve` can count an approval in this usage row (as last read, unlocked): the
    row exists and each window is either the current one or ended before the row was last
    written (then nothing was approved in the current one). Otherwise (no row yet, or windows
    moved with the company's time zone) a total is added up under the card's lock."""
    if row is None:
        return False
    for interval in WINDOWS:
        start = window_start(interval, now, tz)
        if getattr(row, f"{interval}_start") != start and not row.updated_at < cast(
            datetime, start
        ):
            return False
    return True


_USAGE = cast(Table, CardUsage.__table__)


def _start(interval: str) -> Any:
    # Parameter names must differ from the columns an UPDATE sets.
    return bindparam(f"s_{interval}", type_=_USAGE.c[f"{interval}_start"].type)


def _window_used(interval: str) -> Any:
    """A window's total in the current window, in SQL: the row's when its window is the
    current one (`:s_<interval>`), else nothing yet."""
    if interval == "all_time":
        return _USAGE.c.all_time_used
    current = _USAGE.c[f"{interval}_start"] == _start(interval)
    return case((current, _USAGE.c[f"{interval}_used"]), else_=literal(0))


@functools.cache
def _reserve_statement(limited: tuple[str, ...]) -> Any:
    """Count `:billed` in every window of one card's usage row, if the windows are as
    `reservable` saw them and each of `limited` (a limit's interval, one per limit, its amount
    `:limit_<i>`) stays within its amount: one conditional UPDATE, built once per shape.

    The new totals are assigned before the window starts they read (MySQL assigns left to
    right, with the values already assigned)."""
    billed = bindparam("billed", type_=_USAGE.c.all_time_used.type)
    conditions = [_USAGE.c.card_id == id_param("b_card_id")]
    for interval in WINDOWS:
        start = _start(interval)
        conditions.append((_USAGE.c[f"{interval}_start"] == start) | (_USAGE.c.updated_at < start))
    for i, interval in enumerate(limited):
        limit = bindparam(f"limit_{i}", type_=_USAGE.c.all_time_used.type)
        conditions.append(_window_used(interval) + billed <= limit)
    now = bindparam("now", type_=_USAGE.c.updated_at.type)
    assignments: list[tuple[Any, Any]] = [
        (_USAGE.c[f"{interval}_used"], _window_used(interval) + billed) for interval in WINDOWS
    ]
    assignments += [(_USAGE.c[f"{interval}_start"], _start(interval)) for interval in WINDOWS]
    assignments.append((_USAGE.c.all_time_used, _USAGE.c.all_time_used + billed))
    # Concurrent requests reach the row in any order, each with the clock read before.
    assignments.append(
        (_USAGE.c.updated_at, case((_USAGE.c.updated_at > now, _USAGE.c.updated_at), else_=now))
    )
    return update(_USAGE).where(*conditions).ordered_values(*assignments)


def reserve(session: Session, card: Card, billed: Decimal, *, now: datetime, tz: ZoneInfo) -> bool:
    """Count an approval of `billed` in the card's usage row, if every limit of the card allows
    it, in one statement: the row's lock is taken there and held to the commit, the only span in
    which concurrent authorizations of the card wait for each other. False: a limit would be
    passed, or the row changed shape since it was read (the caller decides under the card's
    lock instead)."""
    limits = [
        (str(item["interval"]), Decimal(str(item["amount"])))
        for item in card.spending_limits
        if item["interval"] != "per_authorization"
    ]
    params: dict[str, Any] = {"b_card_id": card.id, "billed": billed, "now": now}
    for interval in WINDOWS:
        params[f"s_{interval}"] = window_start(interval, now, tz)
    for i, (_interval, amount) in enumerate(limits):
        params[f"limit_{i}"] = amount
    statement = _reserve_statement(tuple(interval for interval, _amount in limits))
    result = cast(CursorResult[Any], session.execute(statement, params))
    return result.rowcount == 1


def lock_card_with_usage(
    session: Session, *, company_id: uuid.UUID, card_id: uuid.UUID
) -> tuple[Card, CardUsage | None]:
    """The card, locked, with its usage row (None if it has none yet); NotFound if it is gone."""
    found = session.execute(
        _LOCK_WITH_USAGE, {"card_id": card_id, "company_id": company_id}
    ).one_or_none()
    if found is None:
        raise NotFound(CARD_NOT_FOUND)
    return found[0], found[1]


def card_usage_and_holder(
    session: Session, *, company_id: uuid.UUID, card_id: uuid.UUID
) -> tuple[Card, CardUsage | None, User]:
    """The card with its usage row and its holder, none of them locked; NotFound if the card is
    gone. The holder stays in the session's identity map while the caller holds it."""
    found = session.execute(
        _CARD_WITH_USAGE_AND_HOLDER, {"card_id": card_id, "company_id": company_id}
    ).one_or_none()
    if found is None:
        raise NotFound(CARD_NOT_FOUND)
    return found[0], found[1], found[2]


@dataclass(frozen=True, slots=True)
class Declinable:
    """What a decline without the card's lock reads, in one round trip (`card_for_decline`)."""

    card: Card
    usage: CardUsage | None
    holder_active: bool
    timezone: str
    # The company's card network secret columns: current, previous, when the previous expires.
    secret: tuple[str | None, str | None, datetime | None]


def card_for_decline(
    session: Session, *, company_id: uuid.UUID, card_id: uuid.UUID
) -> Declinable | None:
    """The card with its usage row, neither locked, whether its holder is active, and of its
    company the time zone and the card network secret; None if the card is gone."""
    found = session.execute(
        _DECLINABLE, {"card_id": card_id, "company_id": company_id}
    ).one_or_none()
    if found is None:
        return None
    card, usage, active, timezone, current, previous, expires_at = found
    return Declinable(card, usage, bool(active), timezone, (current, previous, expires_at))


# Cards whose last authorization in this process was declined: at a limit, frozen, cancelled.
# Such a card is likely to decline again, and a decline can be decided without the card's lock
# (see `cards.flows.authorize`): the next authorization first tries that.
_declining: LruCache[tuple[uuid.UUID, uuid.UUID], bool] = LruCache(10_000)


def declining(company_id: uuid.UUID, card_id: uuid.UUID) -> bool:
    return _declining.get((company_id, card_id)) is not None


def note_decision(company_id: uuid.UUID, card_id: uuid.UUID, *, declined: bool) -> None:
    if declined:
        _declining.put((company_id, card_id), True)
    else:
        _declining.discard((company_id, card_id))


# A card's holder hears of its declines once per reason every ten minutes (per process): a
# merchant retrying, or a card at its limit, would otherwise fill their inbox, and every
# decline would read their preferences and write a notification. Each decline is still
# recorded with its reason (the card's transactions).
DECLINE_NOTICE_INTERVAL = timedelta(minutes=10)
_decline_noticed: LruCache[tuple[uuid.UUID, str], datetime] = LruCache(10_000)


def decline_notice_due(card_id: uuid.UUID, reason: str, now: datetime) -> bool:
    """Whether this decline is the one its holder is told of (and note that it is)."""
    last = _decline_noticed.get((card_id, reason))
    if last is not None and timedelta(0) <= now - last < DECLINE_NOTICE_INTERVAL:
        return False
    _decline_noticed.put((card_id, reason), now)
    return True


class LimitUsage:
    """What a card has had approved in the windows holding `now`, for one authorization decided
    under the card's lock (`FOR UPDATE`: every approval of the card is counted under it, so the
    usage row read with it is the latest one), or a decline decided without it (read unlocked,
    the row can only be behind on approvals: `cards.flows.authorize`).

    A window's total comes from the card's usage row when the row's window is the current one,
    and is zero when the row's window is older and the row has not been brought up to date since
    the current one began (nothing was approved in it). Otherwise (no row yet: the card's
    approvals predate usage rows; or the windows moved because the company changed its time
    zone) it is added up from the authorizations, and the row is written afresh with this
    authorization, approved or declined.
    """

    def __init__(
        self, session: Session, card: Card, row: CardUsage | None, *, now: datetime, tz: ZoneInfo
    ) -> None:
        """`card` and `row` as `lock_card_with_usage` (or, unlocked, `card_usage_and_holder`)
        gives them."""
        self._session, self._card, self._now, self._tz = session, card, now, tz
        self._row = row
        self._used: dict[str, Decimal] = {}
        self._added_up = False

    def used(self, interval: str) -> Decimal:
        if interval not in self._used:
            self._used[interval] = self._current(interval)
        return self._used[interval]

    def _current(self, interval: str) -> Decimal:
        start = window_start(interval, self._now, self._tz)
        row = self._row
        if row is not None:
            if start is None:
                return row.all_time_used
            if getattr(row, f"{interval}_start") == start:
                return Decimal(getattr(row, f"{interval}_used"))
            if row.updated_at < start:
                return Decimal(0)
        self._added_up = True
        return approved_since(self._session, card_id=self._card.id, since=start)

    def exceeded(self, amount: Decimal) -> str | None:
        """The first interval whose limit this amount would pass, or None."""
        limits = sorted(self._card.spending_limits, key=lambda item: Decimal(str(item["amount"])))
        for limit in limits:
            interval = str(limit["interval"])
            used = Decimal(0) if interval == "per_authorization" else self.used(interval)
            if used + amount > Decimal(str(limit["amount"])):
                return interval
        return None

    def add(self, amount: Decimal, *, at: datetime | None = None) -> None:
        """Count an approved amount in every window, limited or not; with `at` (a change to
        an earlier authorization: a capture, a reversal, a refund, an expired hold), only in the
        windows that hold that moment (and all time)."""
        values: dict[str, Any] = {"all_time_used": self.used("all_time") + amount}
        for interval in WINDOWS:
            start = window_start(interval, self._now, self._tz)
            counts = at is None or (start is not None and at >= start)
            values[f"{interval}_start"] = start
            values[f"{interval}_used"] = self.used(interval) + (amount if counts else 0)
        row = self._row
        if row is None:
            self._row = CardUsage(
                card_id=self._card.id,
                company_id=self._card.company_id,
                updated_at=self._now,
                **values,
            )
            self._session.add(self._row)
        else:
            # Concurrent requests take the lock in any order, with the clock read before it.
            values["updated_at"] = max(row.updated_at, self._now)
            for name, value in values.items():
                setattr(row, name, value)
        self._used.clear()
        self._added_up = False

    @property
    def added_up(self) -> bool:
        """Whether a window's total was added up from the authorizations (the row is to be
        written afresh, under the card's lock)."""
        return self._added_up

    def declined(self) -> None:
        """A declined authorization counts nothing, but writes the row if a total had to be
        added up: a card at its limit would otherwise add up its window on every decline."""
        if self._added_up:
            self.add(Decimal(0))


def find_authorization(
    session: Session, *, company_id: uuid.UUID, authorization_id: str
) -> CardAuthorization | None:
    return session.scalars(
        _AUTHORIZATION, {"company_id": company_id, "authorization_id": authorization_id}
    ).one_or_none()


# Built once (see core/db.py): every card authorization runs them.
_AUTHORIZATION = select(CardAuthorization).where(
    CardAuthorization.company_id == id_param("company_id"),
    CardAuthorization.authorization_id == bindparam("authorization_id"),
)


_RECORD = insert(cast(Table, CardAuthorization.__table__))


def record_authorization(
    session: Session,
    *,
    card: Card,
    authorization_id: str,
    amount: Decimal,
    currency: str,
    billed_amount: Decimal,
    merchant_name: str,
    category_id: uuid.UUID | None,
    decline_reason: str | None,
    spend_id: uuid.UUID | None,
    now: datetime,
    merchant_country: str | None = None,
    mcc: str | None = None,
) -> None:
    """Write the decision (an IntegrityError if `authorization_id` is already the company's)."""
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "company_id": card.company_id,
        "card_id": card.id,
        "authorization_id": authorization_id,
        "amount": amount,
        "currency": currency,
        "billed_amount": billed_amount,
        "billed_currency": card.currency,
        "merchant_name": merchant_name,
        "merchant_country": merchant_country,
        "mcc": mcc,
        "category_id": category_id,
        "approved": decline_reason is None,
        "captured": Decimal(0),
        "reversed": Decimal(0),
        "refunded": Decimal(0),
        "captured_amount": Decimal(0),
        "hold_closed_at": None if decline_reason is None else now,
        "decline_reason": decline_reason,
        "spend_id": spend_id,
        "created_at": now,
    }
    # A plain INSERT, not an entity for the unit of work: every authorization writes one, and
    # nothing in its transaction reads it back.
    plain(session).execute(_RECORD, values)
    audit.record_change(
        session,
        card,
        "card.authorization_approved" if decline_reason is None else "card.authorization_declined",
        actor_id=None,
        metadata={
            "authorization_id": authorization_id,
            "amount": amount,
            "currency": currency,
            "billed_amount": billed_amount,
            "merchant_name": merchant_name,
            "decline_reason": decline_reason,
            "spend_id": spend_id,
        },
    )


def list_authorizations(
    session: Session,
    *,
    company_id: uuid.UUID,
    card_ids: list[uuid.UUID] | None,
    card_id: uuid.UUID | None,
    approved: bool | None,
    page: SyncParams,
) -> Listed:
    """Newest first, or by cursor in the order they were decided (they never change)."""
    stmt = select(CardAuthorization).where(CardAuthorization.company_id == company_id)
    if card_ids is not None:
        stmt = stmt.where(CardAuthorization.card_id.in_(card_ids))
    if card_id is not None:
        stmt = stmt.where(CardAuthorization.card_id == card_id)
    if approved is not None:
        stmt = stmt.where(CardAuthorization.approved == approved)
    stmt = stmt.order_by(CardAuthorization.created_at.desc(), CardAuthorization.id)
    return listing(
        session, stmt, page, updated=CardAuthorization.created_at, ident=CardAuthorization.id
    )


def card_ids_of(session: Session, *, company_id: uuid.UUID, user_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(Card.id).where(Card.company_id == company_id, Card.user_id == user_id)
        )
    )


# --- what follows an authorization ------------------------------------------------------------


def lock_authorization(
    session: Session, *, company_id: uuid.UUID, authorization_id: str
) -> CardAuthorization | None:
    """The authorization, read again under its card's lock (taken by the caller first)."""
    return session.scalars(
        _AUTHORIZATION.execution_options(populate_existing=True),
        {"company_id": company_id, "authorization_id": authorization_id},
    ).one_or_none()


def find_transaction(
    session: Session, *, company_id: uuid.UUID, kind: TransactionKind, network_id: str
) -> CardTransaction | None:
    return session.scalars(
        select(CardTransaction).where(
            CardTransaction.company_id == company_id,
            CardTransaction.kind == kind,
            CardTransaction.network_id == network_id,
        )
    ).one_or_none()


def record_transaction(session: Session, transaction: CardTransaction, card: Card) -> None:
    """Write a capture, reversal or refund (an IntegrityError if its network id is taken) and
    audit it on the card."""
    session.add(transaction)
    session.flush()
    audit.record_change(
        session,
        card,
        f"card.{transaction.kind}",
        actor_id=None,
        metadata={
            "network_id": transaction.network_id,
            "authorization_ref": transaction.authorization_ref,
            "amount": transaction.amount,
            "currency": transaction.currency,
            "billed_amount": transaction.billed_amount,
            "spend_id": transaction.spend_id,
        },
    )


def stale_holds(session: Session, *, before: datetime, limit: int = 500) -> list[tuple[Any, ...]]:
    """(company, card, authorization id) of holds still open that were taken before `before`,
    oldest first."""
    a = CardAuthorization
    return [
        tuple(row)
        for row in session.execute(
            select(a.company_id, a.card_id, a.authorization_id)
            .where(a.hold_closed_at.is_(None), a.created_at < before)
            .order_by(a.created_at)
            .limit(limit)
        )
    ]


# --- a card's history ---------------------------------------------------------------------------

# Each row's kind, as a number in the query (a string literal's collation would not mix with the
# columns' in a MySQL UNION); 0 is an authorization.
HISTORY_CODES = {TransactionKind.capture: 1, TransactionKind.reversal: 2, TransactionKind.refund: 3}
HISTORY_TYPES = {0: "authorization", **{code: kind.value for kind, code in HISTORY_CODES.items()}}


def history(
    session: Session,
    *,
    company_id: uuid.UUID,
    card_ids: list[uuid.UUID] | None,
    types: frozenset[str] | None,
    approved: bool | None,
    include_declined: bool,
    date_from: datetime | None,
    date_to: datetime | None,
    merchant: str | None,
    page: SyncParams,
) -> Listed:
    """Authorizations (approved and declined) and what followed them, newest first or by cursor
    (by time, then id), as rows of one shape (`HISTORY_COLUMNS`)."""
    a, t = CardAuthorization, CardTransaction
    linked = aliased(CardAuthorization)
    authorizations = select(
        a.id,
        literal(0).label("type"),
        a.card_id,
        a.authorization_id.label("network_id"),
        a.authorization_id.label("authorization_id"),
        a.amount,
        a.currency,
        a.billed_amount,
        a.billed_currency,
        a.merchant_name,
        a.merchant_country,
        a.mcc,
        a.approved,
        a.decline_reason,
        a.spend_id,
        a.captured,
        a.reversed,
        a.hold_closed_at,
        a.created_at,
    ).where(a.company_id == company_id)
    followers = (
        select(
            t.id,
            case(*((t.kind == kind, code) for kind, code in HISTORY_CODES.items())).label("type"),
            t.card_id,
            t.network_id,
            linked.authorization_id.label("authorization_id"),
            t.amount,
            t.currency,
            t.billed_amount,
            t.billed_currency,
            t.merchant_name,
            t.merchant_country,
            t.mcc,
            # Untyped NULLs: a typed one carries a collation MySQL refuses to mix in a UNION.
            null().label("approved"),
            null().label("decline_reason"),
            t.spend_id,
            null().label("captured"),
            null().label("reversed"),
            null().label("hold_closed_at"),
            t.created_at,
        )
        .outerjoin(linked, linked.id == t.authorization_ref)
        .where(t.company_id == company_id)
    )
    branches: list[Any] = []
    for branch, table in ((authorizations, a), (followers, t)):
        if card_ids is not None:
            branch = branch.where(table.card_id.in_(card_ids))
        if date_from is not None:
            branch = branch.where(table.created_at >= date_from)
        if date_to is not None:
            branch = branch.where(table.created_at < date_to)
        if merchant:
            branch = branch.where(func.lower(table.merchant_name).contains(merchant.lower()))
        branches.append(branch)
    authorizations, followers = branches[0], branches[1]
    if approved is not None:
        authorizations = authorizations.where(a.approved.is_(approved))
    elif not include_declined:
        authorizations = authorizations.where(a.approved.is_(True))
    chosen = []
    if types is None or "authorization" in types:
        chosen.append(authorizations)
    kinds = [k for k in TransactionKind if types is None or k.value in types]
    if kinds and approved is None:
        chosen.append(followers.where(t.kind.in_(kinds)))
    if not chosen:
        chosen.append(authorizations.where(false()))
    rows = union_all(*chosen).subquery("history")
    stmt = select(rows).order_by(rows.c.created_at.desc(), rows.c.id)
    return listing(session, stmt, page, updated=rows.c.created_at, ident=rows.c.id)
