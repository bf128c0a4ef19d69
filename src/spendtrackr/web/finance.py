"""The finance dashboard: spend by category and by month, top vendors, what waits for approval,
budgets; and the month's accounting export."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from spendtrackr.web.core import Formats, WebDep, WebRoute

router = APIRouter(route_class=WebRoute, prefix="/app", include_in_schema=False)

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
SPENT = ["approved", "reimbursed"]  # what the company spent: not what waits, nor was refused


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: Decimal
    shown: str
    width: float  # of the chart's bar area, 0-100
    y: int


def bars(groups: list[dict[str, str]], fmt: Formats, *, limit: int = 12) -> list[Bar]:
    """A horizontal bar per group (largest first unless already ordered by month)."""
    rows = [(g["label"] or "—", Decimal(g["base_total"]), g["base_currency"]) for g in groups]
    rows = rows[:limit]
    top = max((v for _, v, _ in rows), default=Decimal(0)) or Decimal(1)
    return [
        Bar(label, value, fmt.money(value, currency), float(value / top * 100), 28 * i)
        for i, (label, value, currency) in enumerate(rows)
    ]


def month_bounds(month: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{month}-01")
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


@router.get("/dashboard")
async def dashboard(
    web: WebDep, month: Annotated[str | None, Query(pattern=MONTH)] = None
) -> Response:
    today = datetime.now(UTC).date()
    month = month or today.strftime("%Y-%m")
    first, last = month_bounds(month)
    year_start = (first.replace(day=1) - timedelta(days=335)).replace(day=1)

    def spent(group_by: str, since: date) -> Coroutine[Any, Any, Any]:
        return web.api.get(
            "/reports/spend-summary", group_by=group_by, date_from=since, date_to=last, status=SPENT
        )

    by_category, by_month, by_vendor, pending, budgets = await web.gather(
        spent("category", first),
        spent("month", year_start),
        spent("vendor", first),
        web.api.get("/spends", status="pending", limit=1),
        web.api.get("/budgets", on=min(today, last).isoformat(), limit=50),
    )
    categories = sorted(by_category["groups"], key=lambda g: -Decimal(g["base_total"]))
    named = [g for g in by_vendor["groups"] if g["key"]]  # spends without a vendor aside
    vendors = sorted(named, key=lambda g: -Decimal(g["base_total"]))[:5]
    months = sorted(by_month["groups"], key=lambda g: g["key"] or "")
    for g in months:
        g["label"] = web.fmt.month(g["key"] or "")
    return web.render(
        "dashboard.html.j2",
        title="Dashboard",
        month=month,
        month_label=web.fmt.month(month),
        total=by_category["base_total"],
        base_currency=by_category["base_currency"],
        category_bars=bars(categories, web.fmt),
        month_bars=bars(months, web.fmt),
        vendors=vendors,
        pending=pending.get("total") or 0,
        budgets=budgets["items"],
        budgets_on=min(today, last),
    )


@router.get("/dashboard/export")
async def export_month(
    web: WebDep,
    month: Annotated[str, Query(pattern=MONTH)],
    format: Annotated[Literal["journal", "qbo", "xero", "netsuite"], Query()] = "journal",
) -> Response:
    """The month's journal lines as the API's accounting export streams them (CSV)."""
    first, last = month_bounds(month)
    answer = await web.api.checked(
        "GET",
        "/exports/accounting.csv",
        params={"date_from": first.isoformat(), "date_to": last.isoformat(), "format": format},
    )
    return web.finish(
        Response(
            answer.content,
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="spendtrackr-{month}-{format}.csv"'
            },
        )
    )
