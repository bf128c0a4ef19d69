"""The web app: server-rendered pages for the people who use SpendTrackr every day, served by
the API's own process under `/app`, with the JSON API as their only backend (`web.api`)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from spendtrackr.web import (
    admin,
    approvals,
    auth,
    cards,
    finance,
    notifications,
    settings,
    spends,
)
from spendtrackr.web.core import STATIC

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    spends.router,
    approvals.router,
    cards.router,
    finance.router,
    admin.router,
    notifications.router,
    settings.router,
    notifications.fallback,  # last
)


class CompressPages:
    """gzip for the web app's pages and files only: the API's JSON stays as it is (its clients
    are mostly on the same network, and compressing costs the CPU the API is measured by)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/app" or path.startswith("/app/"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """The static files and the gzip layer; the app adds the routes of `ROUTERS` after."""
    app.mount("/app/static", StaticFiles(directory=STATIC), name="web-static")
    app.add_middleware(CompressPages)
