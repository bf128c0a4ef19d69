"""What someone with the database's credentials can do to the audit log: lift the append-only
guard (a trigger), edit, and put the guard back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


def execute(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


@contextmanager
def guard_lifted(engine: Engine) -> Iterator[None]:
    execute(engine, "DROP TRIGGER audit_log_no_update")
    try:
        yield
    finally:
        execute(
            engine,
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_log is append-only'"
            if engine.dialect.name in ("mysql", "mariadb")
            else "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        )
