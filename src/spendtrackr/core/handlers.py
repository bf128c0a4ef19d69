"""Exception handlers: every error leaves as `{"detail", "code"}` (validation errors keep FastAPI's
422 list), never with a traceback or SQL."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from spendtrackr.core.errors import AppError
from spendtrackr.core.logging import request_id_var

logger = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _error(
    status: int,
    detail: str,
    code: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "code": code, **(extra or {})}, status_code=status, headers=headers
    )


def app_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return _error(exc.status_code, exc.detail, exc.code, exc.headers, exc.extra)


def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if exc.status_code == 404 and detail == "Not Found":
        detail = "Not found"
    return _error(exc.status_code, detail, code, exc.headers)


def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's shape without `input` (it would echo passwords back) and `ctx` (may hold objects).
    errors: list[dict[str, Any]] = [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()
    ]
    return JSONResponse({"detail": errors, "code": "validation_error"}, status_code=422)


# MySQL and MariaDB error numbers of a transaction rolled back because another one held the
# same rows: 1205 (lock wait timeout) and 1213 (deadlock). The database is fine and the request
# can be sent again as it is: a 409 `lock_timeout` (Stripe's name for the same), not a 503.
_LOCK_CONFLICTS = frozenset({1205, 1213})


def _driver_error_number(exc: Exception) -> object:
    args = getattr(getattr(exc, "orig", None), "args", ())
    return args[0] if args else None


def _retry_later(status: int, detail: str, code: str, seconds: int) -> JSONResponse:
    """A request that did not run and may be sent again as it is; the id finds it in the logs."""
    return JSONResponse(
        {"detail": detail, "code": code, "request_id": request_id_var.get()},
        status_code=status,
        headers={"Retry-After": str(seconds)},
    )


def database_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    number = _driver_error_number(exc)
    if number in _LOCK_CONFLICTS:
        logger.warning("lock conflict: database error %s", number)
        return _retry_later(
            409,
            "Another request was changing the same records; send this one again",
            "lock_timeout",
            1,
        )
    logger.warning("database unavailable: %s %s", type(exc).__name__, number)
    return _retry_later(
        503, "The database is unavailable, retry shortly", "database_unavailable", 2
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(OperationalError, database_error_handler)
    app.add_exception_handler(PoolTimeout, database_error_handler)
