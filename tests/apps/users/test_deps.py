"""Who is calling, and where their reads go."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import signup


class CountingReplica:
    """Counts how often a request asks whether its caller wrote lately (a Redis EXISTS each, in
    production), and always answers that it did: the reads stay on the primary (the real
    replica's tests are tests/core/test_replica.py)."""

    def __init__(self) -> None:
        self.asked: list[uuid.UUID] = []

    def routes_to_replica(self, principal: uuid.UUID) -> bool:
        self.asked.append(principal)
        return False

    def pin(self, principal: uuid.UUID) -> None:
        pass


@pytest.fixture
def replica(app: FastAPI) -> Iterator[CountingReplica]:
    counting = CountingReplica()
    app.state.read_replica = counting
    yield counting
    app.state.read_replica = None


def test_only_routes_that_read_the_replica_ask_for_the_callers_pin(
    client: TestClient, replica: CountingReplica
) -> None:
    admin = signup(client)
    for path in ("/users/me", "/categories", "/approvals", "/cards", "/notifications"):
        assert client.get(path, headers=admin.headers).status_code == 200, path
    assert replica.asked == []
    for path in ("/spends", "/audit-logs", "/reports/spend-summary?group_by=category"):
        assert client.get(path, headers=admin.headers).status_code == 200, path
    assert replica.asked == [uuid.UUID(admin.id)] * 3
