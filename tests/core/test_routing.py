"""`JSONRoute` makes a sync route's body and commits its transaction in the route's thread, once;
the app's routes are one flat list, searched through `RouteIndex`, each signed-in one checking the
session first."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.routing import Match

from spendtrackr.apps.users.deps import SIGNED_IN, CurrentUser
from spendtrackr.core.routing import JSONRoute, RouteIndex
from spendtrackr.main import PUBLIC_ROUTERS, ROUTERS, USER_ROUTERS, public, signed_in
from tests.factories import create_user, signup, submit_spend


@pytest.fixture
def commits() -> Iterator[list[Session]]:
    seen: list[Session] = []

    def count(session: Session) -> None:
        seen.append(session)

    event.listen(Session, "after_commit", count)
    yield seen
    event.remove(Session, "after_commit", count)


def test_a_request_commits_its_transaction_once(client: TestClient, commits: list[Session]) -> None:
    """`/spends` is declared on its router, then again on the app (`add_routes`); its request
    commits once (a `JSONRoute` that wrapped the wrapper it was given would commit twice)."""
    admin = signup(client)
    employee = create_user(client, admin)
    commits.clear()
    submit_spend(client, employee)
    assert len(commits) == 1
    commits.clear()
    listed = client.get("/spends", headers=employee.headers)
    assert listed.status_code == 200
    assert len(commits) == 1


def test_every_route_is_a_json_route_wrapping_its_own_function_once() -> None:
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, JSONRoute), route  # every router uses JSONRoute
            endpoint, depth = route.endpoint, 0
            while hasattr(endpoint, "__wrapped__"):
                endpoint, depth = endpoint.__wrapped__, depth + 1
            assert depth <= 1, (route.path, depth)


def test_the_app_declares_each_route_again_wrapping_its_own_function_once(app: FastAPI) -> None:
    declared = [r for r in app.routes if isinstance(r, JSONRoute)]
    routers = {(r.path, frozenset(r.methods)) for router in ROUTERS for r in router.routes}
    assert routers <= {(r.path, frozenset(r.methods)) for r in declared}
    for route in declared:
        assert route.dependency_overrides_provider is app
        wrapped = getattr(route.endpoint, "__wrapped__", route.endpoint)  # JSON answers only
        assert wrapped is route.declared_endpoint
        assert not hasattr(route.declared_endpoint, "__wrapped__")


def _example_path(path: str) -> str:
    """A path a client could send to a route: each parameter filled in."""
    return re.sub(r"\{[^}]+\}", "0b6a4f55-4d2a-4c5e-9d1f-5d9a0c7e2b11", path)


def test_the_index_finds_the_route_the_routers_own_search_finds(app: FastAPI) -> None:
    """Every method of every route of the app, through the index and through the plain search
    of the whole list in order: the same route, with the same path parameters."""
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    index.build()
    checked = 0
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            path = _example_path(getattr(route, "path", "/"))
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            expected = next(
                (
                    (r, child)
                    for r in app.routes
                    for match, child in [r.matches(dict(scope))]
                    if match is Match.FULL
                ),
                None,
            )
            assert index.match(dict(scope)) == expected, (method, path)
            checked += 1
    assert checked > 200
    # Nothing under a first segment no route starts with, and none for a method not declared.
    assert (
        index.match({"type": "http", "method": "GET", "path": "/nowhere", "root_path": ""}) is None
    )
    assert (
        index.match({"type": "http", "method": "PUT", "path": "/spends", "root_path": ""}) is None
    )


def test_what_the_index_does_not_find_the_router_answers(client: TestClient) -> None:
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong_method = client.put("/spends")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")
    assert "POST" in wrong_method.headers["allow"]


def test_a_route_added_later_is_found(app: FastAPI, client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200  # the index is built

    @app.get("/zz-added-later/{name}")
    def added(name: str) -> dict[str, str]:
        return {"name": name}

    assert client.get("/zz-added-later/x").json() == {"name": "x"}


def test_a_signed_in_router_must_check_the_session_first() -> None:
    """A router in `USER_ROUTERS` built without `SIGNED_IN` would answer anyone: the app refuses
    to start with it."""
    forgot = APIRouter(route_class=JSONRoute)

    @forgot.get("/open")
    def open_route() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="SIGNED_IN"):
        signed_in((*USER_ROUTERS, forgot))
    checked = APIRouter(route_class=JSONRoute, dependencies=SIGNED_IN)
    checked.add_api_route("/closed", open_route)
    assert signed_in((checked,)) == (checked,)


def test_a_public_route_may_not_ask_for_the_caller() -> None:
    """Only `SIGNED_IN` looks for the caller: a public route taking `CurrentUser` would find
    no one, and stops the app from starting."""
    asks = APIRouter(route_class=JSONRoute)

    @asks.get("/mine")
    def mine(user: CurrentUser) -> dict[str, str]:
        return {"id": str(user.id)}

    with pytest.raises(RuntimeError, match="SIGNED_IN"):
        public((*PUBLIC_ROUTERS, asks))
    assert public(PUBLIC_ROUTERS) == PUBLIC_ROUTERS


def test_every_user_route_refuses_a_request_without_a_session(client: TestClient) -> None:
    for router in USER_ROUTERS:
        for route in router.routes:
            for method in sorted(route.methods):
                answer = client.request(method, _example_path(route.path))
                assert answer.status_code == 401, (method, route.path, answer.status_code)
