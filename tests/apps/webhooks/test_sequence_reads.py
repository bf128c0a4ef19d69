"""Reads of a company's chain from a position on (the event feed, a webhook outbox's fill, the
chain's verification) name the `(company, seq)` index on MySQL/MariaDB: left to choose,
MariaDB read them by the company alone and skipped every entry before the position."""

from __future__ import annotations

from contextlib import AbstractContextManager

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.apps.audit.service import CHAIN_ORDER
from spendtrackr.core.config import Settings
from tests.apps.webhooks.conftest import Receiver
from tests.apps.webhooks.test_delivery import create_endpoint, run
from tests.factories import Actor, create_user
from tests.statements import statements_sent

HINT = f"FORCE INDEX ({CHAIN_ORDER})"


def chain_reads() -> AbstractContextManager[list[str]]:
    return statements_sent(lambda s: "FROM audit_log" in s and "audit_log.seq >" in s)


def test_reads_from_a_position_go_through_the_sequence(
    client: TestClient,
    app: FastAPI,
    admin: Actor,
    receiver: Receiver,
    worker_settings: Settings,
) -> None:
    if app.state.engine.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("index hints are MySQL's and MariaDB's")
    create_endpoint(client, admin, receiver.url, ["user.created"])
    create_user(client, admin)
    with chain_reads() as sent:
        assert client.get("/events?after=1", headers=admin.headers).json()["items"]
    assert len(sent) == 1
    assert HINT in sent[0]
    with chain_reads() as sent:  # a few types: the (company, action) index may answer better
        client.get("/events?after=1&types=user.created", headers=admin.headers)
    assert len(sent) == 1
    assert HINT not in sent[0]
    with (
        httpx.Client(timeout=1.0, trust_env=False) as http,
        chain_reads() as sent,
    ):
        assert run(app, admin, worker_settings, http) == 1
    assert sent
    assert all(HINT in s for s in sent)
    with chain_reads() as sent:
        assert client.get("/audit-logs/verify", headers=admin.headers).json()["valid"] is True
    assert sent
    assert all(HINT in s for s in sent)
