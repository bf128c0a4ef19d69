"""The bench's ceiling measurement (bench/ceiling.py): which ids a replay renews, the formula, and
(on MariaDB/MySQL) a capture and replay of real statements in a scratch copy."""

from __future__ import annotations

import os
import uuid

import pytest
from bench import ceiling
from sqlalchemy.engine import make_url

OLD = "11111111-2222-4333-8444-555555555555"
NEW = "66666666-7777-4888-9999-000000000000"


def test_a_replay_renews_the_new_ids_consistently_and_keeps_the_others() -> None:
    statements = [
        f"INSERT INTO spend (id, company_id) VALUES ('{NEW}', '{OLD}')".encode(),
        f"UPDATE spend SET note = 'x' WHERE id = '{NEW}'".encode(),
    ]
    first = ceiling._renamed(statements, [NEW.encode()])
    second = ceiling._renamed(statements, [NEW.encode()])
    ids = [ceiling._UUID.findall(s) for s in first]
    assert ids[0][1] == OLD.encode()  # an existing row's id is kept
    assert ids[0][0] != NEW.encode()
    assert ids[0][0] == ids[1][0]
    assert ceiling._UUID.findall(second[0])[0] != ids[0][0]  # and anew in every replay


def test_the_ceiling_is_the_floor_over_the_floor_with_the_scenarios_statements() -> None:
    floor = ceiling.Replay(2, 0.1, 0.1, [], [])
    scenario = ceiling.Replay(10, 0.6, 0.6, [], [])
    assert ceiling.ceiling(1.0, floor, scenario) == pytest.approx(1.0 / 2.0)
    assert ceiling.ceiling(1.0, floor, floor) == pytest.approx(1.0)


def test_heads_name_each_statement() -> None:
    statements = [
        b"SELECT user.id \nFROM user INNER JOIN auth_session ON 1",
        b"SELECT count(*) FROM (SELECT 1 FROM spend LIMIT 3) AS capped",
        b"INSERT INTO ledger_line (id) VALUES (1)",
        b"UPDATE audit_chain_head SET seq=2",
        b"COMMIT",
    ]
    assert ceiling._heads(statements) == [
        "SELECT FROM user",
        "SELECT FROM spend",
        "INSERT ledger_line",
        "UPDATE audit_chain_head",
        "COMMIT",
    ]


URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.mark.skipif(not URL.startswith("mysql"), reason="MariaDB/MySQL's general log")
def test_captured_statements_replay_in_a_scratch_copy() -> None:
    server = make_url(URL).set(database="").render_as_string(hide_password=False)
    source, scratch = f"ceiling_src_{uuid.uuid4().hex[:8]}", ""
    admin = ceiling._connect(server, "mysql")
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{source}`")
            cur.execute(
                f"CREATE TABLE `{source}`.item (id CHAR(36) PRIMARY KEY, "
                "owner CHAR(36) NOT NULL, note VARCHAR(40), UNIQUE KEY uq_note (owner, note))"
            )
            cur.execute(f"INSERT INTO `{source}`.item VALUES (%s, %s, 'existing')", (OLD, OLD))
        admin.commit()
        ceiling.build_scratch(server, source, f"{source}_ceiling", [])
        scratch = f"{source}_ceiling"

        def send() -> None:  # the "request": another connection, as a server's would be
            conn = ceiling._connect(server, source)
            try:
                with conn.cursor() as cur:
                    cur.execute("SET NAMES utf8mb4")  # a new connection's set-up: not replayed
                    cur.execute("SELECT note FROM item WHERE id = %s", (OLD,))
                    cur.execute("INSERT INTO item VALUES (%s, %s, 'new')", (NEW, OLD))
                conn.commit()
            finally:
                conn.close()

        with admin.cursor() as cur:
            cur.execute("SELECT @@global.general_log, @@global.log_output")
            before = cur.fetchone()
        statements = ceiling.capture(server, send)
        assert ceiling._heads(statements) == ["SELECT FROM item", "INSERT item", "COMMIT"]

        replayed = ceiling.replay(server, scratch, statements, lambda: 0.0, iterations=5)
        assert replayed.statements == 3
        assert replayed.client_cpu_ms > 0
        assert len(replayed.statement_ms) == 3
        assert all(ms > 0 for ms in replayed.statement_ms)
        with admin.cursor() as cur:
            cur.execute(f"SELECT id, note FROM `{scratch}`.item")
            rows = cur.fetchall()
            cur.execute("SELECT @@global.general_log, @@global.log_output")
            after = cur.fetchone()
        # The copied row, and 30 new ones (20 warm-up replays, 5 counted, 5 timed), each a new
        # id, with the same note: the unique index is a plain one in the copy.
        assert sorted(note for _, note in rows) == ["existing"] + ["new"] * 30
        assert len({row_id for row_id, _ in rows}) == 31
        assert NEW not in {i for i, _ in rows}
        assert after == before  # the log is put back as it was
    finally:
        with admin.cursor() as cur:
            for name in (source, scratch):
                if name:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
