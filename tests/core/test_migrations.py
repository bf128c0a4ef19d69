"""Migrations go down to nothing and back up cleanly, on whichever database the suite runs on, and
the schema they build matches the models."""

from __future__ import annotations

import os
import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from spendtrackr import models
from spendtrackr.cli import alembic_config


def _scratch_url(tmp_path: object) -> tuple[str, object]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp_path}/migrations.db", None
    parsed = make_url(base)
    name = f"st_migr_{uuid.uuid4().hex[:8]}"
    server = create_engine(parsed.set(database=""))
    with server.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    return parsed.set(database=name).render_as_string(hide_password=False), (server, name)


def test_upgrade_downgrade_upgrade_matches_models(tmp_path: object) -> None:
    url, cleanup = _scratch_url(tmp_path)
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        engine = create_engine(url)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        command.upgrade(config, "head")
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), models.Base.metadata
            )
        assert diff == []
        engine.dispose()
    finally:
        if cleanup is not None:
            server, name = cleanup  # type: ignore[misc]
            with server.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            server.dispose()
