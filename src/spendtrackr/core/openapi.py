"""Documented error responses for route declarations: `responses=errors(404, 409)`."""

from __future__ import annotations

from typing import Any

from spendtrackr.core.schemas import ErrorBody, ValidationErrorBody

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or expired token",
    403: "Insufficient permissions",
    404: "Not found (or belongs to another company)",
    409: "Conflict with the current state, or with another request changing the same records "
    "at the same moment (`lock_timeout`: send it again)",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Rate limited",
    502: "An outside service this call depends on (an identity provider) did not answer well",
    503: "A dependency is unavailable (`database_unavailable`), or the server is busy "
    "(`overloaded`); retry after `Retry-After` seconds",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {
            "model": ErrorBody | ValidationErrorBody if s == 422 else ErrorBody,
            "description": _DESCRIPTIONS[s],
        }
        for s in statuses
    }
