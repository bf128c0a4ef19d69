"""Cards: mine (last four digits, limits, recent transactions); for finance and admins, every
card, with issue, freeze and unfreeze, and limits."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from spendtrackr.web.api import refused
from spendtrackr.web.core import WebDep, WebRoute, form_of
from spendtrackr.web.spends import names_of

router = APIRouter(route_class=WebRoute, prefix="/app", include_in_schema=False)

INTERVALS = ("per_authorization", "daily", "weekly", "monthly", "yearly", "all_time")
MANAGERS = ("finance", "admin")


async def _page(web: WebDep, *, error: str | None = None, status: int = 200) -> Response:
    mine = await web.api.get("/cards", user_id=web.me["id"], limit=50)
    recent = await web.gather(
        *(web.api.get(f"/cards/{c['id']}/transactions", limit=5) for c in mine["items"])
    )
    company: dict[str, Any] = {"items": []}
    people: dict[str, str] = {}
    if web.can(*MANAGERS):
        company = await web.api.get("/cards", limit=100)
        people = {p["id"]: p["full_name"] for p in (await web.api.get("/users/names"))["items"]}
        people |= await names_of(web, {c["user_id"] for c in company["items"]} - set(people))
    return web.render(
        "cards.html.j2",
        status=status,
        title="Cards",
        mine=list(zip(mine["items"], (r["items"] for r in recent), strict=True)),
        company=company["items"],
        people=people,
        intervals=INTERVALS,
        error=error,
    )


@router.get("/cards")
async def cards(web: WebDep) -> Response:
    return await _page(web)


def _limits(amounts: list[str], intervals: list[str]) -> list[dict[str, str]]:
    """The limit rows of a form, blank ones left out, as typed: the API says what is wrong."""
    return [
        {"amount": amount.strip(), "interval": interval}
        for amount, interval in zip(amounts, intervals, strict=False)
        if amount.strip()
    ]


@router.post("/cards")
async def issue(
    request: Request,
    web: WebDep,
    user_id: Annotated[uuid.UUID, Form()],
    currency: Annotated[str, Form(max_length=3)],
    limit_amount: Annotated[str, Form(max_length=20)] = "",
    limit_interval: Annotated[str, Form(max_length=20)] = "monthly",
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    await form_of(request)
    body: dict[str, Any] = {
        "user_id": str(user_id),
        "currency": currency.strip().upper(),
        "spending_limits": _limits([limit_amount], [limit_interval]),
    }
    if label.strip():
        body["label"] = label.strip()
    issued = web.api.post("/cards", body, headers={"Idempotency-Key": uuid.uuid4().hex})
    if error := await refused(issued, 409, 422):
        return await _page(web, error=error.detail, status=error.status)
    return web.redirect("/app/cards")


@router.post("/cards/{card_id}/status")
async def change_status(
    request: Request,
    web: WebDep,
    card_id: uuid.UUID,
    to: Annotated[str, Form(pattern="^(freeze|unfreeze)$")],
) -> Response:
    await form_of(request)
    if error := await refused(web.api.post(f"/cards/{card_id}/{to}"), 409):
        return await _page(web, error=error.detail, status=error.status)
    return web.redirect("/app/cards")


@router.post("/cards/{card_id}/limits")
async def set_limits(request: Request, web: WebDep, card_id: uuid.UUID) -> Response:
    """Every limit of the card at once (a row per limit, and a blank one to add): a card keeps
    exactly the rows the form sends."""
    form = await form_of(request)
    amounts = [str(v) for v in form.getlist("limit_amount")][:20]
    intervals = [str(v) for v in form.getlist("limit_interval")][:20]
    changed = web.api.patch(f"/cards/{card_id}", {"spending_limits": _limits(amounts, intervals)})
    if error := await refused(changed, 409, 422):
        return await _page(web, error=error.detail, status=error.status)
    return web.redirect("/app/cards")
