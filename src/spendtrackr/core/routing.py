"""The route class every router uses: a sync route's JSON is made, and its transaction committed,
in the route's own thread.

FastAPI runs a sync route in the thread pool, then validates and serializes what it returned
against `response_model` with a second trip to the pool (`serialize_response` with
`is_coroutine=False`). Each trip is a hand-off between the event loop and a worker thread, about
a tenth of a millisecond of CPU under load, on every request. `JSONRoute` wraps the endpoint so
that the same validation and serialization (FastAPI's own response field, with the route's
`response_model_*` options) run right after the route returns, in its thread, and FastAPI gets a
finished `Response`, which it passes through untouched. The request's transaction is committed
there too (`core.db.commit_request`), after the body is made and before it is sent, as the
session dependency would have done with one more trip; a route that raises leaves its session
to the dependency, which rolls it back.

A router included in another router (or in the app) makes its routes again from their
endpoints, so the endpoint a `JSONRoute` is given may be one an inner `JSONRoute` already
wrapped: it wraps the route's own function, once (three nested wrappers, each committing, was
the price of `/spends` being in a router in a router in the app).

Left to FastAPI: async routes, routes with another response class (files, CSV, 204s) and what a
route returns as a `Response` itself. No dependency here sets headers on FastAPI's injected
`Response` parameter: those headers would be dropped from a finished response.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import ResponseValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.responses import Response

from spendtrackr.core.db import commit_request

# Where a wrapper keeps the route function it wraps.
_WRAPS = "__json_route_endpoint__"


class JSONRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        response_class = kwargs.get("response_class")
        json_default = response_class is None or (
            isinstance(response_class, DefaultPlaceholder) and response_class.value is JSONResponse
        )
        if json_default and not inspect.iscoroutinefunction(endpoint):
            endpoint = self._serialized(getattr(endpoint, _WRAPS, endpoint))
        super().__init__(path, endpoint, **kwargs)

    def _serialized(self, endpoint: Callable[..., Any]) -> Callable[..., Any]:
        # functools.wraps keeps the signature FastAPI reads the parameters and dependencies from.
        @functools.wraps(endpoint)
        def run(*args: Any, **kwargs: Any) -> Any:
            result = endpoint(*args, **kwargs)
            response = self._response(result)
            for value in kwargs.values():
                if isinstance(value, Session):
                    commit_request(value)
            return response

        setattr(run, _WRAPS, endpoint)
        return run

    def _response(self, result: Any) -> Any:
        field = self.response_field
        if field is None or isinstance(result, Response):
            return result
        value, errors = field.validate(result, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors=errors, body=result)
        body = field.serialize_json(
            value,
            include=self.response_model_include,
            exclude=self.response_model_exclude,
            by_alias=self.response_model_by_alias,
            exclude_unset=self.response_model_exclude_unset,
            exclude_defaults=self.response_model_exclude_defaults,
            exclude_none=self.response_model_exclude_none,
        )
        return Response(body, status_code=self.status_code or 200, media_type="application/json")
