"""`JSONRoute` makes a sync route's body and commits its transaction in the route's thread, once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from spendtrackr.core.config import Settings
from spendtrackr.core.routing import JSONRoute
from spendtrackr.main import create_app
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
    """`/spends` is in a router included in a router included in the app: each inclusion makes
    the route again from its endpoint, and each `JSONRoute` used to wrap the wrapper it was
    given, so a request committed three times (the last two on an empty transaction)."""
    admin = signup(client)
    employee = create_user(client, admin)
    commits.clear()
    submit_spend(client, employee)
    assert len(commits) == 1
    commits.clear()
    listed = client.get("/spends", headers=employee.headers)
    assert listed.status_code == 200
    assert len(commits) == 1


def test_every_sync_json_route_wraps_its_own_function_once(settings: Settings) -> None:
    app = create_app(settings)  # its own: other tests add routes to the shared one
    app.state.engine.dispose()
    for route in app.routes:
        if not isinstance(route, JSONRoute):
            assert not isinstance(route, APIRoute), route.path  # every router uses JSONRoute
            continue
        endpoint, depth = route.endpoint, 0
        while hasattr(endpoint, "__wrapped__"):
            endpoint, depth = endpoint.__wrapped__, depth + 1
        assert depth <= 1, (route.path, depth)
