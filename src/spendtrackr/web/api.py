"""The JSON API, called in-process as the signed-in person.

The web pages have no backend of their own: every read and write goes through the API's routes
(over ASGI, inside this process), with the person's token. So the pages get exactly the API's
permissions, validation, idempotency, audit and error bodies, and nothing here can drift from
what an API client sees.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import httpx2 as httpx
from fastapi import Request

from spendtrackr.core.logging import request_id_var

# Each page's calls to the API are in the access log already, as the API's own requests.
logging.getLogger("httpx2").setLevel(logging.WARNING)


class ApiError(Exception):
    """An API answer of 400 or more: its status and `{detail, code}` body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        detail = self.body.get("detail")
        self.detail = detail if isinstance(detail, str) else readable(detail) or "Request failed"
        self.code = str(self.body.get("code") or "")
        super().__init__(f"{status} {self.code}: {self.detail}")


async def refused(call: Awaitable[Any], *statuses: int) -> ApiError | None:
    """Make the call; None when the API did it, its answer when it refused with one of
    `statuses` (the page then says why and keeps what was typed). Any other error goes on up,
    to be the page's own answer."""
    try:
        await call
    except ApiError as exc:
        if exc.status in statuses:
            return exc
        raise
    return None


def readable(detail: object) -> str:
    """FastAPI's list of validation errors, as one line a person can read."""
    if not isinstance(detail, list):
        return ""
    parts = []
    for error in detail:
        if isinstance(error, dict):
            loc = error.get("loc", ())
            where = ".".join(str(p) for p in loc if p not in ("body", "query", "path"))
            parts.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg")))
    return "; ".join(parts)


class Api:
    def __init__(self, request: Request, token: str | None) -> None:
        peer = request.client
        transport = httpx.ASGITransport(
            app=request.app,
            # The caller's own address: rate limits and the audit log see the person, not us.
            client=(peer.host, peer.port) if peer else ("127.0.0.1", 0),
        )
        headers = {
            "user-agent": request.headers.get("user-agent", "spendtrackr-web"),
            "x-request-id": request_id_var.get() or "",
        }
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            transport=transport, base_url=str(request.base_url).rstrip("/"), headers=headers
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._http.request(method, path, **kwargs)

    async def checked(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer, as it is (a file, a CSV); ApiError when it is a refusal."""
        response = await self.raw(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text[:200]}
            raise ApiError(response.status_code, body)
        return response

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.checked(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        return await self.call("GET", path, params=clean)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return await self.call("POST", path, **kwargs)

    async def patch(self, path: str, body: Any) -> Any:
        return await self.call("PATCH", path, json=body)

    async def put(self, path: str, body: Any) -> Any:
        return await self.call("PUT", path, json=body)

    async def delete(self, path: str) -> Any:
        return await self.call("DELETE", path)
