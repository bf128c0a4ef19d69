"""Engine, sessions, the declarative base and the request-scoped transaction.

Statements on the hot paths (authentication, the audit append, a spend's steps and receipts,
the policy versions, the duplicate check, the idempotency claim, row locks, the card
authorization's lookups: docs/DESIGN.md lists them, with what building them per request cost)
are built once at import and executed with parameters; a built statement also skips the
cache-key walk. `id_param` types such a statement's UUID parameters.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Integer,
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import PoolResetState
from sqlalchemy.sql.elements import BindParameter

from spendtrackr.core.config import Settings
from spendtrackr.core.errors import AppError, NotFound, Overloaded, ValidationFailed


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (MySQL DATETIME(6) has no zone), always hands back aware UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# Money: exact decimals, 18 digits with 4 after the point (enough for every ISO 4217 minor unit).
Money = Numeric(18, 4, asdecimal=True)


class ExactTotal(TypeDecorator[Decimal]):
    """A running sum of Money that stays exact where it is added up, in SQL as in Python.

    DECIMAL(30, 4) on MySQL (room for a billion spends of the largest amount). SQLite has no
    decimal type, so there it is an integer of ten-thousandths: `col + :delta` and `SUM(col)` are
    then exact integer arithmetic (up to 2^63 ten-thousandths), never floating point."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(30, 4, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return int(value.scaleb(4).to_integral_exact())

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-4)
        return Decimal(value)


EnumT = TypeVar("EnumT", bound=StrEnum)


class StrEnumType(TypeDecorator[EnumT]):
    """A `StrEnum` kept as its value in a VARCHAR: the attribute reads back as the enum member,
    and anything bound to it (a member, or a string in hand-built SQL) must be one of its values
    (a ValueError otherwise, before the database sees it)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[EnumT], length: int) -> None:
        super().__init__(length)
        self.enum = enum
        self.length = length

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> EnumT | None:
        return None if value is None else self.enum(value)


def exact_text(length: int) -> String:
    """Text compared byte for byte: identifiers that others make up (an `Idempotency-Key`, a card
    network's authorization id, a directory event id), where `Key-A` and `key-a` are two.

    MySQL and MariaDB compare text by their tables' collation, case-insensitive by default (and
    accent-insensitive on MySQL 8): a unique key on such a column would take a new authorization
    for a retry of another. `utf8mb4_bin` compares the bytes, as SQLite does anyway."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def exact_sum(column: Any, dialect_name: str) -> Any:
    """SUM of a Money column, exact on every database and read back as a Decimal: SQLite (no
    decimal type) adds integer ten-thousandths, which ExactTotal turns back into a Decimal."""
    if dialect_name == "sqlite":
        return func.sum(func.cast(func.round(column * 10000), Integer), type_=ExactTotal())
    return func.sum(column, type_=ExactTotal())


def id_param(name: str, *, expanding: bool = False) -> BindParameter[Any]:
    """A UUID parameter of a statement built once. Typed here, not by the column it is compared
    with: a foreign key's type is only known once the table it points at is mapped, which may be
    after the statement was built (and an untyped UUID reaches the driver as is).

    An `expanding` list (a page's ids) is written into the statement as literals: a UUID's
    literal is its hex digits, so nothing in it needs escaping, and the driver then has one
    parameter to escape instead of fifty."""
    return bindparam(name, type_=Uuid(), expanding=expanding, literal_execute=expanding)


def plain(session: Session) -> Connection:
    """The session's connection, for a statement built once that loads no entity and answers
    with a row or a few (a lookup, a row lock, an INSERT or UPDATE). `Session.execute` sends any
    statement that names a mapped class through the ORM's execution (its compile state, its
    result set-up): a fifth to a third of such a statement's CPU, for nothing it uses. A page
    of rows stays with the session, whose row handling is the cheaper one for fifty rows
    (docs/DESIGN.md). Unlike `Session.execute`, this does not autoflush: a statement that must
    see the transaction's unflushed changes comes after `session.flush()`."""
    return session.connection()


S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def force_index(stmt: S, model: type[Base], index: str) -> S:
    """`stmt` reading `model`'s table through `index` on MySQL and MariaDB (other databases
    plan as they will). For the `IN` lists of a page's ids: each value is an index dive into
    every candidate index, and the optimizer's pick between them flips with the statistics, to
    a range on `spend_id` plus a sort, or to every row of the company's prefix (all of a 1M
    tenant's 150,000 approval steps, filtered one by one). The composite index answers the
    list in order with fewer dives. An index (or unique constraint) the model does not declare
    fails at import, not as a database error on every request (the migrations test keeps models
    and schema equal)."""
    table = model.__table__
    declared: set[Any] = set()
    if isinstance(table, Table):
        declared = {i.name for i in table.indexes}
        declared |= {c.name for c in table.constraints if isinstance(c, UniqueConstraint)}
    if index not in declared:
        raise ValueError(f"{model.__name__} declares no index {index}")
    hint = f"FORCE INDEX ({index})"
    return stmt.with_hint(model, hint, dialect_name="mysql").with_hint(
        model, hint, dialect_name="mariadb"
    )


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        Decimal: Money,
        uuid.UUID: Uuid(),
    }


class Entity(Base):
    """UUID primary key and UTC timestamps, for every table that is an entity."""

    __abstract__ = True

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def size_thread_pool(settings: Settings) -> None:
    """Run sync routes on `threadpool_size` threads, as many as the engine's pooled connections
    (call from within the event loop, at start-up)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size


def build_engine(settings: Settings, url: str | None = None) -> Engine:
    """The engine on `DATABASE_URL`, or on `url` (the read replica's) with the same pool."""
    url = url or settings.database_url
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=settings.db_echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=settings.threadpool_size,
            max_overflow=settings.db_pool_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        echo=settings.db_echo,
        pool_size=settings.threadpool_size,
        max_overflow=settings.db_pool_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        # No pre-ping: it costs a round trip per request. A connection found dead fails its
        # request with a 503 and makes the pool drop every connection older than it, so the
        # API recovers by itself once the database is back.
        pool_recycle=1800,
        # READ COMMITTED avoids REPEATABLE READ's gap locks (and their deadlocks) on concurrent
        # inserts; every read-modify-write in the app locks its rows explicitly instead.
        isolation_level="READ COMMITTED",
        connect_args={"charset": "utf8mb4", "connect_timeout": 5},
        # Reset on return by `_rollback_if_in_transaction` below instead of always.
        pool_reset_on_return=None,
    )
    event.listen(engine, "reset", _rollback_if_in_transaction)
    return engine


_SERVER_STATUS_IN_TRANS = 1  # the MySQL protocol's SERVER_STATUS_IN_TRANS flag


def _rollback_if_in_transaction(dbapi_conn: Any, _record: Any, state: PoolResetState) -> None:
    """The pool's reset of a returned connection, minus the ROLLBACK after every commit.

    By default the pool rolls back every connection it gets back: after a committed request that
    is one more round trip for nothing. The server reports in every reply whether a transaction
    is open, and PyMySQL keeps that flag; without it (another driver), roll back as usual."""
    if state.terminate_only or state.transaction_was_reset:
        return
    status = getattr(dbapi_conn, "server_status", None)
    if isinstance(status, int) and not status & _SERVER_STATUS_IN_TRANS:
        return
    dbapi_conn.rollback()


def _configure_sqlite(engine: Engine) -> None:
    # SQLite has one writer at a time. A deferred transaction that reads and then writes can fail
    # at once with SQLITE_BUSY when another writer got in between (the busy timeout does not
    # help there), so every transaction takes the write lock up front: requests serialize, and
    # row locks (`FOR UPDATE`, which SQLite ignores) are implied.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below be the only one
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# A `session.info` key: whether notifications written in this session are also emailed (SMTP
# configured). Set by `spendtrackr.sessions.session_factory`.
EMAIL_ENABLED = "email_enabled"


def build_session_factory(
    engine: Engine, *, class_: type[Session] = Session, info: dict[str, Any] | None = None
) -> sessionmaker[Session]:
    """Sessions on `engine`; the application's come from `spendtrackr.sessions`, with its hooks."""
    # expire_on_commit=False: responses are rendered from objects after the commit.
    return sessionmaker(
        engine, class_=class_, expire_on_commit=False, autoflush=True, info=info or {}
    )


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction for a job or CLI command: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


REQUEST_SCOPED = "request_scoped"  # session.info flag: this session is the request's transaction
# session.info keys linking a request's transaction on the primary and its reads on a replica
# (`use_replica`): both end with the request.
REPLICA = "replica"
PRIMARY = "primary"


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's transaction. Committed when the route returns, before the response is sent.

    An AppError with `keep_writes` (a refresh-token reuse that revoked a session family, a failed
    login's audit entry) still commits what was written before it was raised.

    Async on purpose: opening a Session does no I/O, so it costs no trip to the thread pool
    (FastAPI runs a sync generator's start and end there, two hops). A sync route that returns
    normally is committed in its own thread by `core.routing.JSONRoute` (`commit_request`): then
    closing is free too. Otherwise (an error, another route class) the end, which talks to the
    database, goes to a worker thread.
    """
    slots: anyio.Semaphore = request.app.state.request_slots
    await _take_slot(slots, request.app.state.settings.request_queue_timeout_seconds)
    try:
        session: Session = request.app.state.session_factory()
        session.info[REQUEST_SCOPED] = True
        try:
            yield session
        except BaseException as exc:
            await _end_in_thread(session, exc)
            raise
        replica: Session | None = session.info.get(REPLICA)
        if session.in_transaction() or (replica is not None and replica.in_transaction()):
            await _end_in_thread(session, None)
        else:  # no transaction, no connection: nothing to send
            session.close()
            if replica is not None:
                replica.close()
    finally:
        slots.release()


def use_replica(session: Session, replica_sessions: sessionmaker[Session]) -> Session:
    """A session on the read replica for this request, which ends with `session`'s."""
    replica = replica_sessions()
    replica.info[REQUEST_SCOPED] = True
    replica.info[PRIMARY] = session
    session.info[REPLICA] = replica
    return replica


async def _take_slot(slots: anyio.Semaphore, timeout: float) -> None:
    """One of the process's request slots (as many as route threads and pooled connections).

    A request's transaction holds its connection across thread-pool hops: the user dependency
    queries in one thread, the route runs in another, and between the two the request waits in
    the event loop for a free thread. Without a bound, a burst of more requests than threads and
    connections together let every thread block on the pool, waiting for connections held by
    requests that were waiting for those threads: the process stood still until the pool's
    timeout and answered 503s (docs/DESIGN.md). With a slot taken before the session is used,
    the requests beyond the slots wait here, in the event loop and in order, holding neither a
    thread nor a connection.
    """
    try:
        slots.acquire_nowait()  # a free slot means nobody is waiting: no queue to jump
        return
    except anyio.WouldBlock:
        pass
    with anyio.move_on_after(timeout):
        await slots.acquire()
        return
    raise Overloaded("The server is busy, retry shortly", headers={"Retry-After": "1"})


def commit_request(session: Session) -> None:
    """Commit the request's transaction from the route's thread, as it returns successfully
    (given the replica's session, the primary's too: its session check)."""
    if session.info.get(REQUEST_SCOPED):
        session.commit()
        primary: Session | None = session.info.get(PRIMARY)
        if primary is not None:
            primary.commit()


async def _end_in_thread(session: Session, error: BaseException | None) -> None:
    # As FastAPI ends a sync dependency: shielded, so that a cancelled request still hands its
    # connection back, and outside the route threads' limiter, so that ending a transaction
    # (which frees a pool connection) never waits for a thread held by a route that is itself
    # waiting for a connection.
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(
            _end_transaction, session, error, limiter=anyio.CapacityLimiter(1)
        )


def _end_transaction(session: Session, error: BaseException | None) -> None:
    replica: Session | None = session.info.pop(REPLICA, None)
    try:
        if error is None or (isinstance(error, AppError) and error.keep_writes):
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()
        if replica is not None:
            replica.close()  # reads only: closing rolls back what is left


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

E = TypeVar("E", bound=Base)


def apply_changes(obj: Any, changes: dict[str, Any]) -> dict[str, list[Any]]:
    """Set the fields of a PATCH on an entity; the fields that really changed, as
    `{field: [before, after]}` (what an audit entry records)."""
    before = {key: getattr(obj, key) for key in changes}
    for key, value in changes.items():
        setattr(obj, key, value)
    return {k: [before[k], getattr(obj, k)] for k in changes if before[k] != getattr(obj, k)}


@functools.cache
def _locking_select(model: type[E]) -> Select[E]:
    """One row of `model` by id within a company, locked; built once per model."""
    return (
        select(model)
        .where(
            model.id == id_param("entity_id"),  # type: ignore[attr-defined]
            model.company_id == id_param("company_id"),  # type: ignore[attr-defined]
        )
        .with_for_update()
        # populate_existing: an object already in the session is re-read under the lock.
        .execution_options(populate_existing=True)
    )


def keep_loaded(session: Session, entity: Base) -> None:
    """Hold `entity` for the session's life. The identity map only holds weak references: held,
    the next lookup of the row by its key (a category's GL code when posting) is served from
    memory rather than by a query."""
    session.info.setdefault("loaded", set()).add(entity)


def get_in_company_or_404(
    session: Session,
    model: type[E],
    entity_id: uuid.UUID,
    company_id: uuid.UUID,
    *,
    detail: str,
    for_update: bool = False,
) -> E:
    """The tenancy helper: this id, in this company, or 404 (another company's id is a 404 too)."""
    if not for_update:
        # By primary key through the identity map: a row this request already loaded costs no
        # second query. Another company's row is treated exactly like a missing one.
        found = session.get(model, entity_id)
        if found is None or found.company_id != company_id:  # type: ignore[attr-defined]
            raise NotFound(detail)
        keep_loaded(session, found)
        return found
    locking: Select[E] = _locking_select(model)
    obj = session.scalars(locking, {"entity_id": entity_id, "company_id": company_id}).one_or_none()
    if obj is None:
        raise NotFound(detail)
    return obj


def referenced(
    session: Session, model: type[E], entity_id: uuid.UUID, company_id: uuid.UUID, *, what: str
) -> E:
    """An id a request body refers to (`category_id`, `manager_id`...): this company's row, or
    422 `invalid_<kind>` (a missing or another company's row is not the caller's to name, and
    the request itself is what is wrong, hence not a 404). `what` names the field:
    `"category_id"` gives `invalid_category`."""
    try:
        return get_in_company_or_404(session, model, entity_id, company_id, detail="")
    except NotFound:
        kind = what.removesuffix("_id")
        raise ValidationFailed(
            f"{what} does not exist in this company", code=f"invalid_{kind}"
        ) from None
