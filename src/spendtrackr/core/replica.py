"""Reads that may be a moment old, sent to a MySQL/MariaDB replica (`DATABASE_READ_URL`).

Lists, reports, exports and the event feed read from the replica when three things hold:

- the replica is at most `DATABASE_READ_MAX_LAG_SECONDS` behind its primary, as a thread of each
  process reads it twice a second: both replication threads running and `Seconds_Behind_Master`
  (`_Source`) within the bound, in `SHOW REPLICA STATUS`, and the replica's copy of the
  heartbeat no older than that. The heartbeat is a row the same thread stamps on the primary
  just before each reading; it catches what the status cannot: a replica that hears nothing
  from its primary while both its threads look alive says it is 0 seconds behind. A replica
  that stops answering, stops replicating or falls behind sends every read back to the primary
  until it has caught up;
- the monitor itself is alive (a last good reading less than two seconds old);
- the caller has not written in the last `pin_seconds` (the lag bound plus the monitor's period
  and the status's one-second grain): after a committed write request, its user (or API key) is
  pinned to the primary for that long, in the shared cache, so a client reads its own writes.

So what a replica read returns is at most `staleness_bound` seconds old, and never older than
the caller's own last write. The session check (`get_current_user`) always reads the primary:
a revoked session is refused on its next request, whichever database the route then reads.
Replica sessions are read-only transactions: a write sent to one fails instead of forking the
replica from its primary.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from typing import Any

from sqlalchemy import BigInteger, Engine, bindparam, event, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from spendtrackr.core.cache import Cache, CacheUnavailable
from spendtrackr.core.db import Base

logger = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 0.5
# A reading older than this (the monitor stuck on a hung replica) counts as none.
_FRESH_SECONDS = 2.0


class ReplicaHeartbeat(Base):
    """One row (id 1): when a process's replica monitor last stamped it on the primary, in
    microseconds since the epoch. The replica's copy is as old as what it has applied."""

    __tablename__ = "replica_heartbeat"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    beat_us: Mapped[int] = mapped_column(BigInteger)


_BEAT = (
    update(ReplicaHeartbeat).where(ReplicaHeartbeat.id == 1).values(beat_us=bindparam("beat_us"))
)
_LAST_BEAT = select(ReplicaHeartbeat.beat_us).where(ReplicaHeartbeat.id == 1)


class ReadReplica:
    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        cache: Cache,
        *,
        primary: Engine,
        max_lag_seconds: float,
    ) -> None:
        self.engine = engine
        self.primary = primary
        self.sessions = sessions
        self._cache = cache
        self.max_lag_seconds = max_lag_seconds
        # One second for the status's whole-second grain, two periods for the monitor's turns.
        self.staleness_bound = max_lag_seconds + 1 + 2 * CHECK_INTERVAL_SECONDS
        self.pin_seconds = math.ceil(self.staleness_bound)
        self.lag: float | None = None
        self._checked_at = -math.inf
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        event.listen(engine, "connect", _read_only_connection)

    # --- routing ---------------------------------------------------------------------------

    def usable(self) -> bool:
        lag = self.lag
        return (
            lag is not None
            and lag <= self.max_lag_seconds
            and time.monotonic() - self._checked_at < _FRESH_SECONDS
        )

    def pin(self, principal: uuid.UUID) -> None:
        """`principal` wrote: its reads go to the primary for `pin_seconds`."""
        # The write is committed already; the cache being away only costs this client reading
        # from a replica that may not hold it yet (the cache logs it).
        with contextlib.suppress(CacheUnavailable):
            self._cache.set(f"rw-pin:{principal}", "1", self.pin_seconds)

    def routes_to_replica(self, principal: uuid.UUID) -> bool:
        if not self.usable():
            return False
        try:
            return not self._cache.exists(f"rw-pin:{principal}")
        except CacheUnavailable:
            return False  # whether it wrote is unknown: read where its writes are

    # --- the monitor -----------------------------------------------------------------------

    def check(self, *, beat: bool = True) -> None:
        """Stamp the heartbeat on the primary (unless `beat` is false), then read the replica's
        lag once: the larger of its status's and its heartbeat's age (None: not replicating,
        or unreachable)."""
        try:
            if beat:
                self._beat()
            with self.engine.connect() as conn:
                row = conn.execute(text("SHOW REPLICA STATUS")).mappings().first()
                last_beat = conn.execute(_LAST_BEAT).scalar()
        except SQLAlchemyError as exc:  # unreachable, or no right to read its status
            if self.lag is not None:
                logger.warning("read replica unavailable, reading from the primary: %s", exc)
            self.lag = None
            return
        lag = _lag_of(row)
        if lag is not None:
            # Whole seconds, as the status counts them (the bound allows for the grain).
            lag = max(lag, math.floor(_heartbeat_age(last_beat)))
        self.lag = lag
        self._checked_at = time.monotonic()

    def start(self) -> None:
        self.check()
        self._thread = threading.Thread(target=self._run, name="replica-monitor", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        now = _now_us()
        with self.primary.begin() as conn:
            if conn.execute(_BEAT, {"beat_us": now}).rowcount == 0:  # a schema without the row
                with contextlib.suppress(IntegrityError):  # another process made it first
                    conn.execute(insert(ReplicaHeartbeat).values(id=1, beat_us=now))

    def _run(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL_SECONDS):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.engine.dispose()


def _now_us() -> int:
    return time.time_ns() // 1000


def _heartbeat_age(beat_us: int | None) -> float:
    """Seconds since the beat the replica holds (never stamped: as old as can be)."""
    if not beat_us:
        return math.inf
    return max(0.0, (_now_us() - beat_us) / 1_000_000)


def _lag_of(row: Any) -> float | None:
    if row is None:
        return None  # not a replica at all
    # MariaDB and MySQL before 8.0.22 say Slave/Master, MySQL since then Replica/Source.
    running = row.get("Slave_IO_Running") or row.get("Replica_IO_Running")
    applying = row.get("Slave_SQL_Running") or row.get("Replica_SQL_Running")
    behind = row.get("Seconds_Behind_Master")
    if behind is None:
        behind = row.get("Seconds_Behind_Source")
    if running != "Yes" or applying != "Yes" or behind is None:
        return None
    return float(behind)


def _read_only_connection(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("SET SESSION TRANSACTION READ ONLY")
    cur.close()
