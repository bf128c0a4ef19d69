"""The route class every router uses: a sync route's JSON is made, and its transaction committed,
in the route's own thread.

FastAPI runs a sync route in the thread pool, then validates and serializes what it returned
against `response_model` with a second trip to the pool. Each trip is a hand-off between the
event loop and a worker thread, about a tenth of a millisecond of CPU under load, on every
request. `JSONRoute` wraps the endpoint so that the same validation and serialization (a pydantic
`TypeAdapter` of the route's `response_model`, with its `response_model_*` options) run right
after the route returns, in its thread, and hands FastAPI a finished `Response`, which FastAPI
passes through untouched (its documented behaviour for a returned `Response`). The request's
transaction is committed there too (`core.db.commit_request`), after the body is made and before
it is sent; a route that raises leaves its session to the dependency, which rolls it back.

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
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from spendtrackr.core.db import commit_request


class JSONRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        response_class = kwargs.get("response_class")
        json_default = response_class is None or (
            isinstance(response_class, DefaultPlaceholder) and response_class.value is JSONResponse
        )
        if json_default and not inspect.iscoroutinefunction(endpoint):
            endpoint = self._serialized(endpoint)
        super().__init__(path, endpoint, **kwargs)
        self._adapter: TypeAdapter[Any] | None = (
            TypeAdapter(self.response_model) if self.response_model is not None else None
        )

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

        return run

    def _response(self, result: Any) -> Any:
        if self._adapter is None or isinstance(result, Response):
            return result
        try:
            value = self._adapter.validate_python(result, from_attributes=True)
        except ValidationError as exc:
            raise ResponseValidationError(errors=exc.errors(), body=result) from None
        body = self._adapter.dump_json(
            value,
            include=self.response_model_include,
            exclude=self.response_model_exclude,
            by_alias=self.response_model_by_alias,
            exclude_unset=self.response_model_exclude_unset,
            exclude_defaults=self.response_model_exclude_defaults,
            exclude_none=self.response_model_exclude_none,
        )
        return Response(body, status_code=self.status_code or 200, media_type="application/json")
