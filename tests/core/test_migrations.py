"""Migrations go down to nothing and back up cleanly, on whichever database the suite runs on, and
the schema they build matches the models."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON, create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from spendtrackr import models
from spendtrackr.apps.companies.models import Company
from spendtrackr.cli import alembic_config
from spendtrackr.core.db import utcnow


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


def test_a_database_not_in_utf8mb4_gets_every_table_in_it(tmp_path: object) -> None:
    """MariaDB before 11.6 and older MySQL default to latin1: tables created there took
    it, and a company called `Café 東京 🚀` failed its INSERT with a 500."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base or not base.startswith("mysql"):
        pytest.skip("MySQL/MariaDB only: SQLite stores UTF-8 and compares bytes")
    parsed = make_url(base)
    name = f"st_latin_{uuid.uuid4().hex[:8]}"
    server = create_engine(parsed.set(database=""))
    with server.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET latin1")
    url = parsed.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        command.upgrade(alembic_config(url), "head")
        with engine.begin() as conn:
            not_utf8mb4 = conn.execute(
                text(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s"
                    " AND TABLE_COLLATION NOT LIKE 'utf8mb4%'"
                ),
                {"s": name},
            ).all()
            assert not_utf8mb4 == []
            exact = conn.execute(
                text(
                    "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
                    " WHERE TABLE_SCHEMA = :s AND COLLATION_NAME = 'utf8mb4_bin'"
                ),
                {"s": name},
            ).all()
            # MariaDB gives a JSON column added after the conversion utf8mb4_bin; it is not a key.
            json_columns = {
                (table.name, column.name)
                for table in models.Base.metadata.tables.values()
                for column in table.columns
                if isinstance(column.type, JSON)
            }
            assert sorted(row for row in map(tuple, exact) if row not in json_columns) == [
                ("card_authorization", "authorization_id"),
                ("card_transaction", "network_id"),
                ("idempotency_record", "key"),
                ("processed_event", "event_id"),
            ]
            company = Company.__table__
            company_id = uuid.uuid4()
            conn.execute(
                company.insert(),
                {"id": company_id, "name": "Café 東京 🚀", "created_at": utcnow()},
            )
            stored = conn.execute(
                select(company.c.name).where(company.c.id == company_id)
            ).scalar_one()
            assert stored == "Café 東京 🚀"
    finally:
        engine.dispose()
        with server.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()
