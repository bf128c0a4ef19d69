"""The engine's pool: a connection handed back with a transaction open is rolled back; one
handed back after a commit costs no ROLLBACK round trip (MariaDB/MySQL only). Index hints."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from spendtrackr.apps.receipts.models import Receipt
from spendtrackr.core.db import build_engine, force_index
from tests.conftest import make_settings


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    if database_url.startswith("sqlite"):
        pytest.skip("the reset skip reads the MySQL protocol's transaction flag")
    engine = build_engine(make_settings(database_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS pool_reset_probe (n INT)")
        conn.exec_driver_sql("DELETE FROM pool_reset_probe")
    yield engine
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE pool_reset_probe")
    engine.dispose()


def _return_to_pool(raw: Any) -> list[str]:
    """Hand a raw pooled connection back; the rollbacks the pool's reset issued."""
    dbapi = raw.dbapi_connection
    calls: list[str] = []
    original = dbapi.rollback

    def counting_rollback() -> None:
        calls.append("rollback")
        original()

    dbapi.rollback = counting_rollback
    try:
        raw.close()
    finally:
        dbapi.rollback = original
    return calls


def _insert(raw: Any, n: int) -> None:
    cursor = raw.cursor()
    cursor.execute("INSERT INTO pool_reset_probe (n) VALUES (%s)", (n,))
    cursor.close()


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM pool_reset_probe").scalar_one())


def test_an_open_transaction_is_rolled_back_when_its_connection_returns(engine: Engine) -> None:
    raw = engine.raw_connection()  # no Connection around it to end the transaction
    _insert(raw, 1)
    assert _return_to_pool(raw) == ["rollback"]
    assert _count(engine) == 0


def test_a_committed_connection_returns_without_a_rollback(engine: Engine) -> None:
    raw = engine.raw_connection()
    _insert(raw, 2)
    raw.commit()
    assert _return_to_pool(raw) == []
    assert _count(engine) == 1


def test_force_index_names_a_declared_index_on_mysql_and_mariadb_only() -> None:
    """The hint is rendered for MySQL and MariaDB, left out elsewhere, and an index the model
    does not declare fails when the statement is built."""
    stmt = force_index(select(Receipt.id), Receipt, "ix_receipt_company_spend")
    for url, hinted in (
        ("mysql+pymysql://u@localhost/d", True),
        ("mariadb+pymysql://u@localhost/d", True),
        ("sqlite://", False),
    ):
        sql = str(stmt.compile(dialect=create_engine(url).dialect))
        assert ("FROM receipt FORCE INDEX (ix_receipt_company_spend)" in sql) is hinted, sql
    with pytest.raises(ValueError, match="declares no index ix_receipt_nope"):
        force_index(select(Receipt.id), Receipt, "ix_receipt_nope")
