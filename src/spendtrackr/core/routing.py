"""How a request finds its route, and the route class every router uses.

`add_routes` and `RouteIndex`: the application's routes sit in one flat list, and a request is
matched only against the routes that share its path's first segment (below).

`JSONRoute`: a sync route's JSON is made, and its transaction committed, in the route's own
thread.

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

from fastapi import APIRouter, FastAPI
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import ResponseValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session
from starlette._utils import get_route_path
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from spendtrackr.core.db import commit_request


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Add each router's routes to the application's own list.

    Not `include_router`: since FastAPI 0.137 it keeps each included router as a node that
    every request searches route by route, saving and restoring scope keys at each one, and
    searches again on the way down to the route it picked; with this API's two hundred routes
    that cost about half a millisecond of the event loop's CPU a request (docs/DESIGN.md, "One
    flat list of routes"). Each API route is declared again on the app with every setting it
    has, as `include_router` did before: it gets the app's own settings too (the error
    responses every operation may give) and takes its dependencies through the app, so
    `app.dependency_overrides` reach it. The routers, shared by every app built in one
    process, are left as they are.
    """
    for router in routers:
        if router.on_startup or router.on_shutdown:
            raise RuntimeError(f"{router!r}: startup and shutdown handlers belong to the app")
        for route in router.routes:
            if not isinstance(route, APIRoute):
                app.router.routes.append(route)
                continue
            declared = {name: getattr(route, name) for name in _ROUTE_SETTINGS}
            declared["endpoint"] = getattr(route, "declared_endpoint", route.endpoint)
            app.router.add_api_route(**declared, route_class_override=type(route))


# What `add_api_route` takes, each kept by the route under the same name.
_ROUTE_SETTINGS = tuple(
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name not in {"self", "route_class_override"}
)


def _head(path: str) -> str:
    """A path's first segment: "spends" for `/spends/{id}` and for `/spends/42`."""
    return path[1:].split("/", 1)[0]


def _literal_head(route_path: str) -> str | None:
    """A route path's first segment when it is literal, None when a parameter may stand there."""
    head = _head(route_path)
    return None if "{" in head else head


class RouteIndex:
    """The router's first step, put in front of it: the routes a request could match, from the
    first segment of its path, tried in the router's order.

    A route whose path starts with a literal segment can only match a request whose path
    starts with the same one, so the first full match among the request's candidates is the
    first full match in the whole list: the answer the router's own search would give. When
    there is none (a 404, a 405, a path that needs its trailing slash redirected) the request
    goes to the router, which answers it as it always does. The index follows the routes: it is
    rebuilt when their number changes (a test adding one).
    """

    def __init__(self, router: Router, fallback: ASGIApp) -> None:
        self.router = router
        self.fallback = fallback
        self._size = -1
        self._by_segment: dict[str, list[BaseRoute]] = {}
        self._anywhere: list[BaseRoute] = []

    def build(self) -> None:
        by_segment: dict[str, list[BaseRoute]] = {}
        anywhere: list[BaseRoute] = []
        for route in self.router.routes:
            path = getattr(route, "path", None)
            segment = _literal_head(path) if isinstance(path, str) and path else None
            if segment is None:
                anywhere.append(route)
                for routes in by_segment.values():
                    routes.append(route)
            else:
                by_segment.setdefault(segment, list(anywhere)).append(route)
        self._by_segment, self._anywhere = by_segment, anywhere
        self._size = len(self.router.routes)

    def match(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        """The first route that fully matches the request, with what it adds to the scope."""
        if self._size != len(self.router.routes):
            self.build()
        for route in self._by_segment.get(_head(get_route_path(scope)), self._anywhere):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # With FastAPI's OpenTelemetry instrumentation on, the router's own search runs: it also
        # names the matched route on the request's span.
        if scope["type"] == "http" and "fastapi.telemetry" not in scope:
            found = self.match(scope)
            if found is not None:
                route, child_scope = found
                scope.setdefault("router", self.router)
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
        await self.fallback(scope, receive, send)


def index_routes(app: FastAPI) -> None:
    """Put a `RouteIndex` in front of the application's router."""
    router = app.router
    if router.form_limits:  # applied by the router's own search only
        return
    router.middleware_stack = RouteIndex(router, router.middleware_stack)


class JSONRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        response_class = kwargs.get("response_class")
        json_default = response_class is None or (
            isinstance(response_class, DefaultPlaceholder) and response_class.value is JSONResponse
        )
        # As written, for `add_routes` to declare the route again.
        self.declared_endpoint = endpoint
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
