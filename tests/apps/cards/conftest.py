"""Shared by the card tests: a company with a cardholder and the network's secret, and a clock
the limit windows read (moved through `app.dependency_overrides`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.core.deps import current_time
from tests.factories import Actor, create_user, signup, webhook_secret


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> Iterator[Clock]:
    fake = Clock(datetime(2026, 6, 15, 12, 0, tzinfo=UTC))  # a Monday

    async def now() -> datetime:
        return fake()

    app.dependency_overrides[current_time] = now
    yield fake
    del app.dependency_overrides[current_time]


@pytest.fixture
def setup(client: TestClient) -> tuple[Actor, Actor, dict[str, str]]:
    admin = signup(client)
    holder = create_user(client, admin)
    return admin, holder, webhook_secret(client, admin)
