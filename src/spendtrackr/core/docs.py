"""`/docs` (Swagger UI) and `/redoc` from this process alone: the assets come from the
fastapi-offline package, Swagger UI starts from a script file of ours, and neither page has an
inline script, so both work air-gapped and under a strict CSP."""

from __future__ import annotations

import html
import json
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from spendtrackr.core.routing import JSONRoute, add_routes

ASSETS = "/docs-assets"
PAGES = ("/docs", "/redoc")
# Styles may be inline: Swagger UI sets style attributes and ReDoc injects <style> elements.
# Scripts may not. ReDoc's search runs in a worker built from a blob.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_OWN = Path(__file__).parent / "docs_static"


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" type="image/png" href="{ASSETS[1:]}/favicon.png">{head}</head>'
        f"<body>{body}</body></html>"
    )


def install(app: FastAPI, *, openapi_url: str, swagger_settings: dict[str, object]) -> None:
    """Serve the two pages and their assets. URLs in the pages are relative, so they keep working
    behind a proxy that mounts the API under a prefix."""
    app.mount(
        ASSETS,
        StaticFiles(directory=_OWN, packages=[("fastapi_offline", "static")]),
        name="docs-assets",
    )
    spec = openapi_url.lstrip("/")
    # JSON in a data block is never executed; `<` is escaped so it cannot close the element.
    settings = json.dumps({"url": spec, **swagger_settings}).replace("<", "\\u003c")

    pages = APIRouter(route_class=JSONRoute, include_in_schema=False)

    @pages.get("/docs", response_class=HTMLResponse)
    def swagger_ui() -> HTMLResponse:
        return _page(
            f"{app.title} - Swagger UI",
            f'<link rel="stylesheet" href="{ASSETS[1:]}/swagger-ui.css">',
            '<div id="swagger-ui"></div>'
            f'<script id="swagger-settings" type="application/json">{settings}</script>'
            f'<script src="{ASSETS[1:]}/swagger-ui-bundle.js"></script>'
            f'<script src="{ASSETS[1:]}/swagger-init.js"></script>',
        )

    @pages.get("/redoc", response_class=HTMLResponse)
    def redoc() -> HTMLResponse:
        return _page(
            f"{app.title} - ReDoc",
            "",
            f'<redoc spec-url="{html.escape(spec)}"></redoc>'
            f'<script src="{ASSETS[1:]}/redoc.standalone.js"></script>',
        )

    add_routes(app, pages)
