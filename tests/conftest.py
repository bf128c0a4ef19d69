"""Shared fixtures: one migrated database per test run (MariaDB/MySQL when TEST_DATABASE_URL is set,
a SQLite file otherwise), Redis when TEST_REDIS_URL is set, and an app built on them.

Tests are isolated by tenancy: each test signs up its own companies with unique emails, and every
query in the product is scoped by company, so no test can see another's rows.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from spendtrackr.cli import alembic_config
from spendtrackr.core.config import Settings, get_settings
from spendtrackr.core.deps import current_time
from spendtrackr.main import create_app


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_root / 'test.db'}"
    parsed = make_url(url)
    name = parsed.database or "spendtrackr_test"
    server = create_engine(parsed.set(database=""))
    with server.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        conn.exec_driver_sql(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    server.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "redis_url": os.environ.get("TEST_REDIS_URL") or None,
        "jwt_secret": "test-secret-that-is-long-enough-for-hs256-keys",
        "argon2_memory_kib": 1024,
        "argon2_time_cost": 1,
        "rate_limit_login_ip": "100000/minute",
        "rate_limit_login_email": "100000/minute",
        "rate_limit_login_email_ip": "100000/minute",
        "rate_limit_signup_ip": "100000/minute",
        "rate_limit_api_user": "100000/minute",
        "threadpool_size": 16,
        "log_json": False,
        "log_level": "WARNING",
        "storage_path": Path(tempfile.mkdtemp(prefix="spendtrackr-receipts-")),
        "ocr_retry_base_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _database_url(tmp_path_factory.mktemp("db"))
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session", autouse=True)
def _clean_redis() -> None:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live_server(app: FastAPI) -> Iterator[str]:
    """The app served by a real uvicorn on a free loopback port, for tests with real threads."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The `spendtrackr` command's environment: the suite's database and storage, cheap hashes."""
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("STORAGE_PATH", str(settings.storage_path)),
        ("ARGON2_MEMORY_KIB", "1024"),
        ("ARGON2_TIME_COST", "1"),
    ):
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# A clock routes read through `NowDep`, set by the test (`clock.now = ...`).
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
