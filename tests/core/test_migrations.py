"""Migrations go down to nothing and back up cleanly, on whichever database the suite runs on, and
the schema they build matches the models."""

from __future__ import annotations

import os
import uuid
from datetime import date
from decimal import Decimal

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON, create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from spendtrackr import models
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.spends.models import NO_GROUP, SpendTotal
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


def test_the_company_totals_are_filled_in_from_the_category_rows(tmp_path: object) -> None:
    """The `company` dimension's rows, added by a migration, start as the sums of the category
    rows (which hold every spend once) by company, day, currency and status."""
    url, cleanup = _scratch_url(tmp_path)
    engine = create_engine(url)
    try:
        config = alembic_config(url)
        command.upgrade(config, "5d2a9c7e4f18")
        totals = SpendTotal.__table__
        company = Company.__table__
        first, second = uuid.uuid4(), uuid.uuid4()
        day = date(2026, 11, 3)
        rows = [
            (first, uuid.uuid4(), day, "USD", "approved", 2, Decimal("10.5000")),
            (first, uuid.uuid4(), day, "USD", "approved", 1, Decimal("4.2500")),
            (first, NO_GROUP, day, "EUR", "pending", 1, Decimal("7.0000")),
            (first, uuid.uuid4(), date(2026, 11, 4), "USD", "approved", 3, Decimal("1.0000")),
            (second, uuid.uuid4(), day, "USD", "approved", 5, Decimal("50.0000")),
        ]
        with engine.begin() as conn:
            for company_id in (first, second):
                conn.execute(
                    company.insert(), {"id": company_id, "name": "Co", "created_at": utcnow()}
                )
            for company_id, group, on, currency, status, count, total in rows:
                for dimension in ("category", "vendor"):  # the vendor rows are not counted
                    conn.execute(
                        totals.insert(),
                        {
                            "company_id": company_id,
                            "dimension": dimension,
                            "group_id": group,
                            "spend_date": on,
                            "currency": currency,
                            "status": status,
                            "spend_count": count,
                            "total": total,
                            "base_total": total,
                        },
                    )
        command.upgrade(config, "head")
        with engine.connect() as conn:
            found = {
                (r.company_id, r.group_id, r.spend_date, r.currency, r.status): (
                    r.spend_count,
                    r.total,
                    r.base_total,
                )
                for r in conn.execute(select(totals).where(totals.c.dimension == "company"))
            }
        assert found == {
            (first, NO_GROUP, day, "USD", "approved"): (3, Decimal("14.75"), Decimal("14.75")),
            (first, NO_GROUP, day, "EUR", "pending"): (1, Decimal("7"), Decimal("7")),
            (first, NO_GROUP, date(2026, 11, 4), "USD", "approved"): (
                3,
                Decimal("1"),
                Decimal("1"),
            ),
            (second, NO_GROUP, day, "USD", "approved"): (5, Decimal("50"), Decimal("50")),
        }
        command.downgrade(config, "5d2a9c7e4f18")
        with engine.connect() as conn:
            left = conn.execute(select(totals.c.dimension).distinct()).scalars().all()
        assert sorted(left) == ["category", "vendor"]
    finally:
        engine.dispose()
        if cleanup is not None:
            server, name = cleanup  # type: ignore[misc]
            with server.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            server.dispose()
