"""Settings names clients of the original deployment guide still use."""

from __future__ import annotations

import logging

import pytest

from spendtrackr.core.config import Settings
from spendtrackr.main import create_app
from tests.conftest import make_settings


def test_db_url_is_read_as_database_url_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_URL", "sqlite:///./from-db-url.db")
    assert Settings(_env_file=None).database_url == "sqlite:///./from-db-url.db"  # type: ignore[call-arg]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        create_app(make_settings(database_url)).state.engine.dispose()  # logs to stderr
    finally:
        root.handlers[:], root.level = handlers, level
    assert "DB_URL is deprecated: set DATABASE_URL instead" in capsys.readouterr().err

    monkeypatch.setenv("DATABASE_URL", "sqlite:///./from-database-url.db")
    assert Settings(_env_file=None).database_url == "sqlite:///./from-database-url.db"  # type: ignore[call-arg]
    assert Settings(_env_file=None).deprecations() == []  # type: ignore[call-arg]
