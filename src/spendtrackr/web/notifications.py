"""My notifications: read one (and go to what it is about), or all."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from spendtrackr.web.core import WebDep, WebRoute, error_page, form_of

router = APIRouter(route_class=WebRoute, prefix="/app", include_in_schema=False)

# Where a notification's entity is shown in the app.
LINKS = {
    "spend": "/app/spends/{id}",
    "approval": "/app/approvals",
    "card": "/app/cards",
    "receipt": "/app/spends",
}


@router.get("/notifications")
async def notifications(
    web: WebDep, offset: Annotated[int, Query(ge=0, le=100_000)] = 0
) -> Response:
    listed = await web.api.get("/notifications", limit=50, offset=offset)
    for n in listed["items"]:
        template = LINKS.get(n.get("entity_type") or "")
        n["link"] = template.format(id=n["entity_id"]) if template else None
    return web.render(
        "notifications.html.j2",
        title="Notifications",
        items=listed["items"],
        total=listed.get("total") or 0,
        offset=offset,
    )


@router.post("/notifications/read-all")
async def read_all(request: Request, web: WebDep) -> Response:
    await form_of(request)
    await web.api.post("/notifications/read-all")
    return web.redirect("/app/notifications")


@router.post("/notifications/{notification_id}/read")
async def read_one(request: Request, web: WebDep, notification_id: uuid.UUID) -> Response:
    form = await form_of(request)
    await web.api.post(f"/notifications/{notification_id}/read")
    target = str(form.get("then") or "")
    return web.redirect(target if target.startswith("/app/") else "/app/notifications")


# Last: any other address under /app is a page that does not exist.
fallback = APIRouter(route_class=WebRoute, prefix="/app", include_in_schema=False)


@fallback.get("/{rest:path}")
async def not_found(request: Request, rest: str) -> Response:
    return error_page(request, 404, "There is no such page.")
