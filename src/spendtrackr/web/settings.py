"""My settings: name and password, the locale amounts and dates are written in, and where each
kind of notification goes."""

from __future__ import annotations

from typing import Any

from babel import Locale
from fastapi import APIRouter, Request
from starlette.responses import Response

from spendtrackr.web.api import refused
from spendtrackr.web.core import WebDep, WebRoute, form_of

router = APIRouter(route_class=WebRoute, prefix="/app", include_in_schema=False)

# Offered in the list (any other Babel locale works through the API).
LOCALES = (
    "en_US", "en_GB", "en_AU", "en_CA", "de_DE", "de_CH", "fr_FR", "fr_CA", "es_ES", "es_MX",
    "it_IT", "nl_NL", "pt_BR", "pt_PT", "sv_SE", "da_DK", "nb_NO", "fi_FI", "pl_PL", "ja_JP",
)  # fmt: skip
CHANNELS = ("email", "in_app")


async def _page(
    web: WebDep, *, status: int = 200, error: str | None = None, done: str | None = None
) -> Response:
    prefs = web.prefs  # read with the page (a refused save changed nothing)
    shown = {tag: Locale.parse(tag).get_display_name(web.fmt.locale) or tag for tag in LOCALES}
    if prefs.get("locale") and prefs["locale"] not in shown:
        shown[prefs["locale"]] = prefs["locale"]
    return web.render(
        "settings.html.j2",
        status=status,
        title="Settings",
        prefs=prefs,
        locales=shown,
        channels=CHANNELS,
        error=error,
        done=done,
    )


@router.get("/settings")
async def settings_page(web: WebDep, saved: int = 0) -> Response:
    return await _page(web, done="Saved" if saved else None)


@router.post("/settings/profile")
async def save_profile(request: Request, web: WebDep) -> Response:
    form = await form_of(request)
    body: dict[str, Any] = {"full_name": str(form.get("full_name", "")).strip()}
    if form.get("new_password"):
        body["current_password"] = str(form.get("current_password", ""))
        body["new_password"] = str(form["new_password"])
    if error := await refused(web.api.patch("/users/me", body), 400, 401, 422):
        return await _page(web, status=error.status, error=error.detail)
    return web.redirect("/app/settings?saved=1")


@router.post("/settings/notifications")
async def save_notifications(request: Request, web: WebDep) -> Response:
    """Every kind's channels as ticked (none ticked: that kind is not sent), the digest, and
    the locale (left as it is when none is picked)."""
    form = await form_of(request)
    current = web.prefs
    body: dict[str, Any] = {
        "channels": {
            kind: [c for c in CHANNELS if f"{kind}:{c}" in form] for kind in current["channels"]
        },
        "digest": str(form.get("digest", current["digest"])),
    }
    if form.get("locale"):
        body["locale"] = str(form["locale"])
    if error := await refused(web.api.put("/users/me/notification-preferences", body), 422):
        return await _page(web, status=error.status, error=error.detail)
    return web.redirect("/app/settings?saved=1")
