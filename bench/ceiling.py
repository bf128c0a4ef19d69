"""The ceiling: the best ratio to the floor that a scenario's SQL statements leave possible.

A scenario's ratio is, on two saturated cores, the floor's CPU a request over the scenario's. The
floor's CPU (`F`) is its HTTP, JWT and framework work plus its own statements (`Sf`: one INSERT
and a COMMIT). A scenario does at least that HTTP, JWT and framework work, plus the statements it
sends (`Ss`), so its ratio is at most `F / (F - Sf + Ss)`, however fast the rest of its Python is.

`Sf` and `Ss` are measured here the cheapest way there is: the statements the running API (and
the floor) sent for one request, read back from MariaDB's general log, replayed as literal SQL
through a bare PyMySQL connection (no SQLAlchemy, no parameter escaping, no application code), in
a scratch copy of the bench database, each replay ending with its COMMIT. The CPU counted is the
replaying process's and MariaDB's. The scratch copy only makes every statement cheaper than it is
in the bench database (its big tables hold just the rows the page reads; its unique indexes are
plain ones, so that the same key can be written again; it has no foreign keys), and the replay
does less work than the API does, so the ceiling errs high: a scenario cannot beat it by sending
the same statements.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pymysql  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

_UUID = re.compile(rb"'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'")
_SETUP = re.compile(
    rb"\s*(SET |SHOW |SELECT @@|SELECT VERSION\(\)|SELECT DATABASE\(\)|ROLLBACK)", re.I
)
# Tables larger than this are not copied whole into the scratch database (their statements then
# read less and cost less: the ceiling only rises).
_COPY_LIMIT = 50_000


@dataclass
class Replay:
    statements: int
    client_cpu_ms: float
    db_cpu_ms: float
    # What each statement does to which table ("INSERT spend", "SELECT FROM user"), to read
    # what a scenario sends.
    heads: list[str]
    # Each statement's mean wall time in the replay, in ms (the round trip included): where the
    # statements' cost lies.
    statement_ms: list[float]

    @property
    def total_ms(self) -> float:
        return self.client_cpu_ms + self.db_cpu_ms


def _connect(server_url: str, database: str) -> pymysql.Connection[Any]:
    url = make_url(server_url)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=database,
        autocommit=False,
        charset="utf8mb4",
    )


def capture(server_url: str, send: Callable[[], None]) -> list[bytes]:
    """The statements MariaDB received while `send` made one request (nothing else may run)."""
    admin = _connect(server_url, "mysql")
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT @@global.log_output, @@global.general_log")
            log_output, was_on = cur.fetchone()
            cur.execute("SET GLOBAL log_output = 'TABLE'")
            cur.execute("TRUNCATE mysql.general_log")
            cur.execute("SET GLOBAL general_log = 1")
            try:
                send()
            finally:
                cur.execute(f"SET GLOBAL general_log = {int(was_on)}")
                cur.execute("SET GLOBAL log_output = %s", (log_output,))
            cur.execute(
                "SELECT thread_id, CAST(argument AS BINARY) FROM mysql.general_log "
                "WHERE command_type = 'Query' ORDER BY event_time"
            )
            rows = cur.fetchall()
            cur.execute("TRUNCATE mysql.general_log")
    finally:
        admin.close()
    # The request's connection: the one that sent the most statements (a pool may also have
    # reset another one meanwhile).
    own = admin.thread_id()
    counts: dict[int, int] = {}
    for thread, _ in rows:
        if thread != own:
            counts[thread] = counts.get(thread, 0) + 1
    if not counts:
        return []
    busiest = max(counts, key=lambda thread: counts[thread])
    statements = [bytes(argument) for thread, argument in rows if thread == busiest]
    # A connection the pool opened for this request first sets itself up: not the request's.
    while statements and _SETUP.match(statements[0]):
        statements.pop(0)
    return statements


def build_scratch(server_url: str, source: str, scratch: str, page_ids: list[str]) -> None:
    """`scratch`: the tables of `source` with its small tables' rows and the page's spends,
    steps and receipts; unique indexes made plain ones, no foreign keys."""
    conn = _connect(server_url, source)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
            cur.execute(f"CREATE DATABASE `{scratch}` CHARACTER SET utf8mb4")
            cur.execute(
                "SELECT table_name, table_rows FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE'",
                (source,),
            )
            tables = cur.fetchall()
            ids = ", ".join(f"'{uuid.UUID(i)}'" for i in page_ids) or "NULL"
            for name, rows in tables:
                cur.execute(f"CREATE TABLE `{scratch}`.`{name}` LIKE `{source}`.`{name}`")
                for index, columns in _unique_indexes(cur, source, name):
                    cur.execute(
                        f"ALTER TABLE `{scratch}`.`{name}` DROP INDEX `{index}`, "
                        f"ADD INDEX `{index}` ({columns})"
                    )
                copy = f"INSERT INTO `{scratch}`.`{name}` SELECT * FROM `{source}`.`{name}`"
                if name == "spend":
                    cur.execute(f"{copy} WHERE id IN ({ids})")
                elif name in ("approval_step", "receipt"):
                    cur.execute(f"{copy} WHERE spend_id IN ({ids})")
                elif (rows or 0) <= _COPY_LIMIT:
                    cur.execute(copy)
        conn.commit()
    finally:
        conn.close()


def _unique_indexes(cur: Any, schema: str, table: str) -> list[tuple[str, str]]:
    cur.execute(
        "SELECT index_name, group_concat(concat('`', column_name, '`') ORDER BY seq_in_index) "
        "FROM information_schema.statistics WHERE table_schema = %s AND table_name = %s "
        "AND non_unique = 0 AND index_name <> 'PRIMARY' GROUP BY index_name",
        (schema, table),
    )
    return [(str(name), str(columns)) for name, columns in cur.fetchall()]


def replay(
    server_url: str,
    scratch: str,
    statements: list[bytes],
    cpu_seconds: Callable[[], float],
    iterations: int = 300,
) -> Replay:
    """CPU a replay of `statements` (the replaying process's, MariaDB's), in ms. The UUIDs that
    name no row of the scratch database (the request's new rows) are new ones in every replay."""
    conn = _connect(server_url, scratch)
    try:
        existing = _existing_ids(conn, statements)
        new_ids = sorted({m for s in statements for m in _UUID.findall(s)} - existing)
        runs = [_renamed(statements, new_ids) for _ in range(iterations + 20)]
        for run in runs[:20]:  # warm-up
            _execute(conn, run)
        client, db = time.process_time(), cpu_seconds()
        for run in runs[20:]:
            _execute(conn, run)
        client, db = time.process_time() - client, cpu_seconds() - db
        # Timed apart from the CPU counts, so that the timing adds nothing to them.
        walls = [0.0] * len(statements)
        for _ in range(iterations):
            _execute(conn, _renamed(statements, new_ids), walls)
    finally:
        conn.close()
    return Replay(
        len(statements),
        client * 1000 / iterations,
        db * 1000 / iterations,
        _heads(statements),
        [round(w * 1000 / iterations, 3) for w in walls],
    )


def _heads(statements: list[bytes]) -> list[str]:
    heads = []
    for statement in statements:
        verb = statement.split(None, 1)[0].decode().upper() if statement.strip() else ""
        if verb == "SELECT":
            table = re.search(rb"\bFROM\s+`?(\w+)", statement)
            heads.append(f"SELECT FROM {table.group(1).decode() if table else '?'}")
        elif verb in ("INSERT", "UPDATE", "DELETE"):
            table = re.match(rb"\s*\w+\s+(?:INTO\s+|FROM\s+)?`?(\w+)", statement)
            heads.append(f"{verb} {table.group(1).decode() if table else '?'}")
        else:
            heads.append(statement[:20].decode(errors="replace"))
    return heads


def _execute(
    conn: pymysql.Connection[Any], statements: list[bytes], walls: list[float] | None = None
) -> None:
    for i, statement in enumerate(statements):
        started = time.perf_counter()
        conn.query(statement)
        if walls is not None:
            walls[i] += time.perf_counter() - started
    if not statements or statements[-1].strip().upper() != b"COMMIT":
        conn.commit()


def _renamed(statements: list[bytes], new_ids: list[bytes]) -> list[bytes]:
    fresh = {old: str(uuid.uuid4()).encode() for old in new_ids}
    return [
        _UUID.sub(lambda m: b"'" + fresh.get(m.group(1), m.group(1)) + b"'", s) for s in statements
    ]


def _existing_ids(conn: pymysql.Connection[Any], statements: list[bytes]) -> set[bytes]:
    found = {m for s in statements for m in _UUID.findall(s)}
    if not found:
        return set()
    existing: set[bytes] = set()
    listed = ", ".join(f"'{i.decode()}'" for i in found)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND column_name = 'id' "
            # a numeric id would equal a uuid's leading digits (MariaDB compares them as numbers)
            "AND data_type IN ('char', 'varchar', 'binary', 'varbinary', 'uuid')"
        )
        for (table,) in cur.fetchall():
            cur.execute(f"SELECT id FROM `{table}` WHERE id IN ({listed})")
            existing.update(str(uuid.UUID(str(row[0]))).encode() for row in cur.fetchall())
    conn.rollback()
    return existing


def ceiling(floor_cpu_ms: float, floor: Replay, scenario: Replay) -> float:
    """The best ratio to the floor that the scenario's statements leave possible."""
    return floor_cpu_ms / (floor_cpu_ms - floor.total_ms + scenario.total_ms)


def as_dict(replay: Replay) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(replay).items()}


def measure(
    server_url: str,
    database: str,
    page_ids: list[str],
    requests: dict[str, Callable[[], None]],
    cpu_seconds: Callable[[], float],
) -> dict[str, Replay]:
    """Each request's statements, captured in order (a request that reads what another writes
    goes first) and replayed in a scratch copy of `database`, dropped afterwards."""
    scratch = f"{database}_ceiling"
    build_scratch(server_url, database, scratch, page_ids)
    try:
        captured = {name: capture(server_url, send) for name, send in requests.items()}
        return {
            name: replay(server_url, scratch, statements, cpu_seconds)
            for name, statements in captured.items()
        }
    finally:
        conn = _connect(server_url, database)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
        finally:
            conn.close()
