"""`DATABASE_READ_URL` against a real MariaDB replica: the test starts a primary (binary log on)
and a replica of it (GTID replication), two `mariadbd` processes on free loopback ports, and
serves the app on the pair.

What a read came from is told apart by a row changed on the replica only (as root, which
`read_only` lets through): a list that shows the change was read from the replica."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from spendtrackr.cli import alembic_config
from spendtrackr.core.cache import build_cache
from spendtrackr.core.replica import ReadReplica, ReplicaHeartbeat, _lag_of
from spendtrackr.main import create_app
from tests.conftest import make_settings
from tests.factories import create_user, signup, submit_spend

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db")

pytestmark = pytest.mark.skipif(
    not (Path(MARIADBD).exists() and INSTALL_DB), reason="needs mariadbd and mariadb-install-db"
)

DB = "spendtrackr_replica_test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect(port: int, database: str | None = None) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host="127.0.0.1", port=port, user="root", password="", database=database, autocommit=True
    )


def _start(root: Path, name: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
    data = root / name
    subprocess.run(  # noqa: S603 - the installed MariaDB, fixed arguments
        [INSTALL_DB or "", "--no-defaults", f"--datadir={data}", "--skip-test-db",
         "--auth-root-authentication-method=normal", "--user=root"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = subprocess.Popen(  # noqa: S603
        [MARIADBD, "--no-defaults", "--user=root", f"--datadir={data}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={root / name}.sock",
         f"--pid-file={root / name}.pid", "--innodb-buffer-pool-size=64M",
         "--skip-name-resolve", "--character-set-server=utf8mb4", *extra],
        stdout=subprocess.DEVNULL, stderr=(root / f"{name}.log").open("wb"),
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            _connect(port).close()
            return server
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError((root / f"{name}.log").read_text()) from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    root = tmp_path_factory.mktemp("replication")
    primary_port, replica_port = _free_port(), _free_port()
    primary = _start(root, "primary", primary_port, "--server-id=1", f"--log-bin={root}/bin")
    replica = _start(root, "replica", replica_port, "--server-id=2", "--read-only")
    try:
        with _connect(replica_port).cursor() as cur:
            cur.execute(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER='root', "
                "MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos",
                (primary_port,),
            )
            cur.execute("START SLAVE")
        with _connect(primary_port).cursor() as cur:
            cur.execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        yield primary_port, replica_port
    finally:
        for server in (replica, primary):
            server.terminate()
            server.wait(timeout=30)


def _url(port: int) -> str:
    return f"mysql+pymysql://root@127.0.0.1:{port}/{DB}"


@pytest.fixture(scope="module")
def client(pair: tuple[int, int]) -> Iterator[TestClient]:
    primary_port, replica_port = pair
    command.upgrade(alembic_config(_url(primary_port)), "head")  # replicated like any write
    settings = make_settings(
        _url(primary_port),
        database_read_url=_url(replica_port),
        # The default bound: the status counts whole seconds, so a replica applying a
        # transaction begun in the previous second reads 1 behind even when it is current.
        database_read_max_lag_seconds=2,
        redis_url=None,
    )
    app = create_app(settings)
    with TestClient(app) as test_client:
        _wait_until(lambda: app.state.read_replica.usable(), "the replica to catch up")
        yield test_client


def _replica_of(client: TestClient) -> ReadReplica:
    return client.app.state.read_replica  # type: ignore[attr-defined, no-any-return]


def _wait_until(condition: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _on_replica(pair: tuple[int, int], sql: str, *args: Any) -> int:
    """Run `sql` on the replica only (root passes read_only); the rows it changed."""
    with _connect(pair[1], DB) as conn, conn.cursor() as cur:
        return int(cur.execute(sql, args))


def _replicated(pair: tuple[int, int], table: str, row_id: str) -> bool:
    with _connect(pair[1], DB) as conn, conn.cursor() as cur:
        return bool(
            cur.execute(f"SELECT 1 FROM `{table}` WHERE id = %s", (row_id.replace("-", ""),))
        )


def _changed_on_replica(
    client: TestClient, pair: tuple[int, int], actor: Any, *, written: str, on_replica: str
) -> None:
    """A spend `actor` submits as `written`, replicated, then described `on_replica` on the
    replica only: a list that shows `on_replica` was read from the replica."""
    spend = submit_spend(client, actor, amount="42.00", description=written)
    _wait_until(lambda: _replicated(pair, "spend", spend["id"]), "the spend to replicate")
    _wait_until(_replica_of(client).usable, "the monitor to read the replica as current")
    changed = _on_replica(
        pair,
        "UPDATE spend SET description = %s WHERE id = %s",
        on_replica,
        spend["id"].replace("-", ""),
    )
    assert changed == 1


def _descriptions(client: TestClient, actor: Any) -> set[str]:
    response = client.get("/spends", headers=actor.headers)
    assert response.status_code == 200, response.text
    return {s["description"] for s in response.json()["items"]}


def test_reads_go_to_the_replica_unless_the_caller_just_wrote(
    client: TestClient, pair: tuple[int, int]
) -> None:
    replica = _replica_of(client)
    admin = signup(client)
    employee = create_user(client, admin, role="employee")
    finance = create_user(client, admin, role="finance")
    _changed_on_replica(
        client, pair, employee, written="as written", on_replica="as the replica has it"
    )

    # Finance has not written: its list is the replica's.
    assert _descriptions(client, finance) == {"as the replica has it"}
    # The employee wrote a moment ago: pinned to the primary, it reads its own write.
    assert _descriptions(client, employee) == {"as written"}
    # Once the pin has run out, the employee's reads go to the replica too.
    time.sleep(replica.pin_seconds + 0.2)
    assert _descriptions(client, employee) == {"as the replica has it"}

    # A write pins again, at once.
    submit_spend(client, employee, amount="7.00", description="second")
    assert _descriptions(client, employee) == {"as written", "second"}


def test_the_export_streams_from_the_replica(client: TestClient, pair: tuple[int, int]) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    spend = submit_spend(client, admin, amount="42.00", description="journal as written")
    assert spend["status"] == "approved"  # no policy: approved, its journal posted
    _wait_until(lambda: _replicated(pair, "spend", spend["id"]), "the spend to replicate")
    _wait_until(_replica_of(client).usable, "the monitor to read the replica as current")
    _on_replica(
        pair, "UPDATE ledger_line SET description = 'journal on the replica' WHERE spend_id = %s",
        spend["id"].replace("-", ""),
    )  # fmt: skip
    export = client.get("/exports/accounting.csv", headers=finance.headers)
    assert export.status_code == 200
    assert "journal on the replica" in export.text
    assert "journal as written" not in export.text


def test_a_replica_that_stops_applying_is_not_read(
    client: TestClient, pair: tuple[int, int]
) -> None:
    replica = _replica_of(client)
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    _changed_on_replica(client, pair, admin, written="primary", on_replica="replica")
    assert _descriptions(client, finance) == {"replica"}
    assert client.get("/readyz").json()["checks"]["read_replica"] == "ok"

    _on_replica(pair, "STOP SLAVE SQL_THREAD")
    try:
        _wait_until(lambda: not replica.usable(), "the monitor to see the replica stop")
        # Every read goes to the primary while the replica cannot say how far behind it is.
        assert _descriptions(client, finance) == {"primary"}
        ready = client.get("/readyz").json()
        assert ready["status"] == "degraded"
        assert ready["checks"]["read_replica"] == "unavailable"
    finally:
        _on_replica(pair, "START SLAVE SQL_THREAD")
    _wait_until(replica.usable, "the replica to apply again")
    assert _descriptions(client, finance) == {"replica"}


def test_the_session_check_reads_the_primary(client: TestClient, pair: tuple[int, int]) -> None:
    """A logout is refused on the next read even while the replica still has the session."""
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    assert client.get("/spends", headers=finance.headers).status_code == 200
    _on_replica(pair, "STOP SLAVE SQL_THREAD")  # the replica keeps the session alive
    try:
        replica = _replica_of(client)
        replica.lag = 0.0  # and the app is told it is current
        replica.check = lambda: None  # type: ignore[method-assign]
        logout = client.post(
            "/auth/logout", headers=finance.headers, json={"refresh_token": finance.refresh_token}
        )
        assert logout.status_code == 204, logout.text
        assert client.get("/spends", headers=finance.headers).status_code == 401
    finally:
        del replica.check
        _on_replica(pair, "START SLAVE SQL_THREAD")
        _wait_until(replica.usable, "the replica to apply again")


def test_replica_sessions_cannot_write(client: TestClient) -> None:
    replica = _replica_of(client)
    with replica.sessions() as session, pytest.raises(DBAPIError, match="READ ONLY"):
        session.execute(text("UPDATE company SET name = name"))


@pytest.mark.parametrize(
    ("row", "lag"),
    [
        (None, None),
        ({"Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Seconds_Behind_Master": 3}, 3.0),
        ({"Slave_IO_Running": "Connecting", "Slave_SQL_Running": "Yes",
          "Seconds_Behind_Master": None}, None),
        ({"Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes",
          "Seconds_Behind_Source": 0}, 0.0),
        ({"Slave_IO_Running": "Yes", "Slave_SQL_Running": "No", "Seconds_Behind_Master": 0}, None),
    ],
)  # fmt: skip
def test_lag_read_from_the_status(row: dict[str, Any] | None, lag: float | None) -> None:
    assert _lag_of(row) == lag


def test_a_replica_that_hears_nothing_is_not_read(pair: tuple[int, int]) -> None:
    """The status's blind spot: a replica whose threads run but which receives nothing says it
    is 0 seconds behind. Its heartbeat says how old it really is. A monitor of its own here (on
    a database of its own, which the app's monitor does not stamp), checked by hand: a beat
    older than the bound on the replica is a replica too far behind, whatever its status."""
    primary_port, replica_port = pair
    database = "spendtrackr_heartbeat_test"
    with _connect(primary_port).cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    primary = create_engine(f"mysql+pymysql://root@127.0.0.1:{primary_port}/{database}")
    replica_engine = create_engine(f"mysql+pymysql://root@127.0.0.1:{replica_port}/{database}")
    ReplicaHeartbeat.__table__.create(primary, checkfirst=True)  # no row: the first beat makes it
    replica = ReadReplica(
        replica_engine,
        sessionmaker(replica_engine),
        build_cache(None, 1.0),
        primary=primary,
        max_lag_seconds=1,
    )
    try:
        _wait_until(lambda: (replica.check(), replica.usable())[1], "the heartbeat to replicate")
        with _connect(replica_port, database) as conn, conn.cursor() as cur:
            cur.execute("UPDATE replica_heartbeat SET beat_us = beat_us - 30000000")
            cur.execute("SHOW SLAVE STATUS")
            columns = [c[0] for c in cur.description or ()]
            status = dict(zip(columns, cur.fetchone() or (), strict=False))
        assert _lag_of(status) == 0  # the status alone would have kept reading it
        replica.check(beat=False)
        assert replica.lag is not None
        assert replica.lag >= 29
        assert not replica.usable()
        # The next beat reaches it: read again.
        _wait_until(lambda: (replica.check(), replica.usable())[1], "the next heartbeat")
    finally:
        replica.engine.dispose()
        primary.dispose()
