"""Shared by the card tests: a company with a cardholder and the network's secret (the clock the
limit windows read is the suite's `clock` fixture)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import Actor, create_user, signup, webhook_secret


@pytest.fixture
def setup(client: TestClient) -> tuple[Actor, Actor, dict[str, str]]:
    admin = signup(client)
    holder = create_user(client, admin)
    return admin, holder, webhook_secret(client, admin)
