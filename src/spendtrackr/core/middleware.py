"""One pure-ASGI middleware for what every request needs (cheaper than BaseHTTPMiddleware):
a request id, security headers, a body size limit, the access log, metrics, and a JSON 500 that
never shows a traceback."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable

from fastapi import params
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spendtrackr.core import docs, metrics
from spendtrackr.core.logging import request_id_var

logger = logging.getLogger("spendtrackr.access")
error_logger = logging.getLogger("spendtrackr.error")

_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# The web app's forms check the Origin header (CSRF): under `no-referrer` a browser sends
# `Origin: null` with every form; `same-origin` sends ours, and still nothing to other sites.
_WEB_SECURITY_HEADERS = [
    (b"referrer-policy", b"same-origin") if name == b"referrer-policy" else (name, value)
    for name, value in _SECURITY_HEADERS
]
_API_ONLY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]
_DOC_PAGE_HEADERS = [
    (b"content-security-policy", docs.CSP.encode()),
    (b"cache-control", b"no-cache"),
]
# The web app (`spendtrackr.web`): its own scripts and styles only, never inline, nothing from
# another origin; a receipt image may be shown from a blob while it uploads.
WEB_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_WEB_PAGE_HEADERS = [
    (b"content-security-policy", WEB_CSP.encode()),
    (b"cache-control", b"no-store"),  # pages show a person's own data
]
# Static files are named by their content's hash (`?v=`): a changed file is a new URL.
_WEB_STATIC_HEADERS = [
    (b"content-security-policy", WEB_CSP.encode()),
    (b"cache-control", b"public, max-age=31536000, immutable"),
]
_ASSET_HEADERS = [(b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")]


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit; an HTTPException so that
    FastAPI's body parsing lets it through as a 413 instead of a generic 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"Request body larger than {limit} bytes")


class UploadRoutes:
    """Which requests may carry a file upload: those to a route that declares a `File`
    parameter. The body limit follows the route, never the client's `Content-Type`, so a large
    multipart body to a JSON route is refused at the JSON limit before it is read. Built from
    the routes as their routers hold them, each at the full path clients call."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._matchers = [
            (route.path_regex, frozenset(route.methods or ()))
            for route in routes
            if isinstance(route, APIRoute)
            and any(isinstance(p.field_info, params.File) for p in route.dependant.body_params)
        ]

    def __call__(self, method: str, path: str) -> bool:
        return any(method in methods and rx.match(path) for rx, methods in self._matchers)


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        accepts_upload: Callable[[str, str], bool],
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.accepts_upload = accepts_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        response_started = False
        path: str = scope["path"]
        limit = (
            self.max_upload_bytes
            if self.accepts_upload(scope["method"], path)
            else self.max_body_bytes
        )
        extra_headers = [(b"x-request-id", request_id.encode())]
        web = path == "/app" or path.startswith("/app/")
        extra_headers += _WEB_SECURITY_HEADERS if web else _SECURITY_HEADERS
        if path in docs.PAGES:
            extra_headers += _DOC_PAGE_HEADERS
        elif path.startswith("/app/static/"):
            extra_headers += _WEB_STATIC_HEADERS
        elif web:
            extra_headers += _WEB_PAGE_HEADERS
        elif path.startswith(docs.ASSETS):
            extra_headers += _ASSET_HEADERS  # cached by their ETag, not `no-store`
        else:
            extra_headers += _API_ONLY_HEADERS

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + extra_headers
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await _send_json(send_wrapper, 413, _too_large(limit))
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge:
            if not response_started:
                await _send_json(send_wrapper, 413, _too_large(limit))
        except Exception:
            error_logger.exception("unhandled error on %s %s", scope["method"], path)
            if not response_started:
                await _send_json(
                    send_wrapper,
                    500,
                    {
                        "detail": "Internal server error",
                        "code": "internal_error",
                        "request_id": request_id,
                    },
                )
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.observe(scope["method"], template, status, elapsed)
            logger.info(
                "%s %s %s",
                scope["method"],
                path,
                status,
                extra={"route": template, "status": status, "ms": round(elapsed * 1000, 2)},
            )
            request_id_var.reset(token)


def _too_large(limit: int) -> dict[str, str]:
    return {"detail": f"Request body larger than {limit} bytes", "code": "payload_too_large"}


async def _send_json(send: Send, status: int, body: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
