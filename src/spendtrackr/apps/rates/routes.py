from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from spendtrackr.apps.rates import service
from spendtrackr.apps.rates.models import ExchangeRate
from spendtrackr.apps.rates.schemas import Conversion, RateCreate, RateRead
from spendtrackr.apps.users.deps import SIGNED_IN, CurrentUser, FinanceUser
from spendtrackr.core.currency import CurrencyCode, quantize
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import SettingsDep
from spendtrackr.core.errors import ValidationFailed
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/exchange-rates",
    tags=["exchange rates"],
    responses=errors(401),
)


def _read(row: ExchangeRate) -> RateRead:
    return RateRead.model_validate(row).model_copy(
        update={"company_rate": row.company_id is not None}
    )


@router.post("", response_model=RateRead, status_code=201, responses=errors(403, 422))
def set_rate(body: RateCreate, session: SessionDep, actor: FinanceUser) -> RateRead:
    """The company's own rate for a pair and day (finance, admins): it wins over the imported
    reference rate of that day, for this company only."""
    if body.base == body.quote:
        raise ValidationFailed("quote: must differ from base", code="invalid_pair")
    row = service.set_manual(
        session,
        company_id=actor.company_id,
        actor_id=actor.id,
        rate_date=body.date,
        base=body.base,
        quote=body.quote,
        rate=body.rate,
    )
    return _read(row)


@router.get("", response_model=Page[RateRead])
def list_rates(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    base: Annotated[CurrencyCode | None, Query()] = None,
    quote: Annotated[CurrencyCode | None, Query()] = None,
    on: Annotated[date | None, Query(alias="date")] = None,
) -> Page[RateRead]:
    """Imported reference rates and the company's own, newest day first."""
    total, rows = service.list_rates(
        session, company_id=user.company_id, base=base, quote=quote, on=on, page=page
    )
    return Page(total=total, items=[_read(r) for r in rows])


@router.get("/convert", response_model=Conversion, responses=errors(422))
def convert(
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    amount: Annotated[Decimal, Query(gt=0, le=Decimal("1e14"), max_digits=20)],
    from_: Annotated[CurrencyCode, Query(alias="from")],
    to: CurrencyCode,
    on: Annotated[date, Query(alias="date")],
) -> Conversion:
    """`amount` of `from` in `to` at the rate of `date`, or of the latest earlier business day
    within `RATE_LOOKBACK_DAYS` (422 `no_rate` beyond it)."""
    converted = service.convert(
        session,
        company_id=user.company_id,
        amount=amount,
        currency=from_,
        to=to,
        on=on,
        window=settings.rate_lookback_days,
    )
    return Conversion(
        amount=str(quantize(amount, from_)),
        currency=from_,
        converted=str(converted.amount),
        to=to,
        rate=format(converted.rate.normalize(), "f"),
        rate_date=converted.rate_date,
    )
