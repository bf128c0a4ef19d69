"""Exchange rates: imported reference rates (the operator's files), a company's manual rates, and
the lookup every conversion uses."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.rates.models import ExchangeRate
from spendtrackr.apps.rates.parsing import ParsedRate
from spendtrackr.core.currency import quantize
from spendtrackr.core.errors import ValidationFailed
from spendtrackr.core.pagination import PageParams, paginate

PIVOT = "EUR"  # the reference rates' base: other pairs are crossed through it
PLACES = Decimal("1e-10")


@dataclass(frozen=True, slots=True)
class Found:
    """A conversion rate (units of `quote` per unit of `base`) and the day it is of."""

    rate: Decimal
    rate_date: date


def import_rates(session: Session, rates: Iterable[ParsedRate], *, source: str) -> int:
    """Reference rates for everyone, replacing those of the same pairs and days."""
    by_pair: dict[tuple[str, str], dict[date, Decimal]] = defaultdict(dict)
    for r in rates:
        by_pair[(r.base, r.quote)][r.rate_date] = r.rate
    count = 0
    for (base, quote), days in by_pair.items():
        session.execute(
            delete(ExchangeRate).where(
                ExchangeRate.company_id.is_(None),
                ExchangeRate.base == base,
                ExchangeRate.quote == quote,
                ExchangeRate.rate_date.between(min(days), max(days)),
            )
        )
        rows = [
            {
                "id": uuid.uuid4(),
                "company_id": None,
                "rate_date": day,
                "base": base,
                "quote": quote,
                "rate": value,
                "source": source,
            }
            for day, value in days.items()
        ]
        for start in range(0, len(rows), 2000):
            session.execute(insert(ExchangeRate), rows[start : start + 2000])
        count += len(rows)
    return count


def set_manual(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    rate_date: date,
    base: str,
    quote: str,
    rate: Decimal,
) -> ExchangeRate:
    """A company's own rate for a pair and day (replacing its earlier one)."""
    existing = session.scalars(
        select(ExchangeRate).where(
            ExchangeRate.company_id == company_id,
            ExchangeRate.base == base,
            ExchangeRate.quote == quote,
            ExchangeRate.rate_date == rate_date,
        )
    ).one_or_none()
    if existing is None:
        existing = ExchangeRate(
            id=uuid.uuid4(), company_id=company_id, rate_date=rate_date, base=base, quote=quote
        )
        session.add(existing)
    existing.rate, existing.source = rate, "manual"
    session.flush()
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="exchange_rate.set",
        entity_type="exchange_rate",
        entity_id=existing.id,
        metadata={"date": rate_date, "base": base, "quote": quote, "rate": rate},
    )
    return existing


def list_rates(
    session: Session,
    *,
    company_id: uuid.UUID,
    base: str | None,
    quote: str | None,
    on: date | None,
    page: PageParams,
) -> tuple[int, list[ExchangeRate]]:
    stmt = select(ExchangeRate).where(
        or_(ExchangeRate.company_id == company_id, ExchangeRate.company_id.is_(None))
    )
    if base:
        stmt = stmt.where(ExchangeRate.base == base)
    if quote:
        stmt = stmt.where(ExchangeRate.quote == quote)
    if on:
        stmt = stmt.where(ExchangeRate.rate_date == on)
    order = (ExchangeRate.rate_date.desc(), ExchangeRate.base, ExchangeRate.quote, ExchangeRate.id)
    return paginate(session, stmt.order_by(*order), page)


def _latest(
    session: Session, company_id: uuid.UUID, base: str, quote: str, on: date, window: int
) -> Found | None:
    """The latest rate of `base`->`quote` (or its inverse) on or before `on`, within `window`
    days; on the same day a company's own rate wins over the reference."""
    rows = session.execute(
        select(
            ExchangeRate.base, ExchangeRate.rate, ExchangeRate.rate_date, ExchangeRate.company_id
        )
        .where(
            or_(ExchangeRate.company_id == company_id, ExchangeRate.company_id.is_(None)),
            or_(
                and_(ExchangeRate.base == base, ExchangeRate.quote == quote),
                and_(ExchangeRate.base == quote, ExchangeRate.quote == base),
            ),
            ExchangeRate.rate_date <= on,
            ExchangeRate.rate_date >= on - timedelta(days=window),
        )
        .order_by(ExchangeRate.rate_date.desc())
        .limit(8)
    ).all()
    if not rows:
        return None
    best_day = rows[0].rate_date
    same_day = [r for r in rows if r.rate_date == best_day]
    row = next((r for r in same_day if r.company_id is not None), same_day[0])
    with localcontext() as ctx:
        ctx.prec = 34
        value = row.rate if row.base == base else Decimal(1) / row.rate
    return Found(value.quantize(PLACES), row.rate_date)


def find_rate(
    session: Session, *, company_id: uuid.UUID, base: str, quote: str, on: date, window: int
) -> Found | None:
    """Units of `quote` per unit of `base` on `on` (or the latest earlier day within `window`
    days: weekends and holidays have no reference rate), directly, inverted, or crossed through
    the euro."""
    if base == quote:
        return Found(Decimal(1), on)
    direct = _latest(session, company_id, base, quote, on, window)
    if direct is not None or PIVOT in (base, quote):
        return direct
    to_base = _latest(session, company_id, PIVOT, base, on, window)
    to_quote = _latest(session, company_id, PIVOT, quote, on, window)
    if to_base is None or to_quote is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 34
        value = to_quote.rate / to_base.rate
    return Found(value.quantize(PLACES), min(to_base.rate_date, to_quote.rate_date))


@dataclass(frozen=True, slots=True)
class Converted:
    """An amount in another currency, with the rate and the rate's day that gave it."""

    amount: Decimal
    rate: Decimal
    rate_date: date


def convert(
    session: Session,
    *,
    company_id: uuid.UUID,
    amount: Decimal,
    currency: str,
    to: str,
    on: date,
    window: int,
) -> Converted:
    """`amount` of `currency` in `to`, rounded to `to`'s minor unit: exact decimal arithmetic,
    one rounding at the end. 422 `no_rate` when no rate is found within `window` days."""
    found = find_rate(session, company_id=company_id, base=currency, quote=to, on=on, window=window)
    if found is None:
        raise ValidationFailed(
            f"no {currency}->{to} rate on {on} or in the {window} days before: import the "
            "reference rates (spendtrackr rates import) or set the company's own "
            "(POST /exchange-rates)",
            code="no_rate",
        )
    with localcontext() as ctx:
        ctx.prec = 34
        converted = quantize(amount * found.rate, to)
    return Converted(converted, found.rate, found.rate_date)
