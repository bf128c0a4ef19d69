"""`JSONRoute` makes a sync route's body and commits its transaction in the route's thread, once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from spendtrackr.core.routing import JSONRoute
from spendtrackr.main import ROUTERS
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
    """`/spends` is in a router included in a router included in the app; its request commits
    once (FastAPI before 0.137 made the route again at each inclusion, and a `JSONRoute` that
    wrapped the wrapper it was given committed three times)."""
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
