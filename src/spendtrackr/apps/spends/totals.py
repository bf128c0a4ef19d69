"""Daily spend totals (`SpendTotal`), kept in step with the spends in the same transaction.

Every flush notes what its spend changes add to and take from the totals: a new spend adds one to
its groups, a deleted one takes one away, and a change of amount, currency, date, status,
category, vendor or team takes the spend out of its old groups and adds it to the new ones (the
ORM hands over the old values: those columns keep `active_history`). Nothing is written then.
Just before the commit, ahead of the audit chain's append, the transaction's net changes go out as
one upsert, rows in a fixed order, so two writers that touch the same totals lock them in the same
order and the chain head is still the last lock a transaction takes.

The company-wide spend summary then adds up a few tens of thousands of rows (days x groups x
currencies x statuses) instead of every spend. The `company` dimension has one group (`NO_GROUP`):
every spend of the company, by day, currency and status. A company-wide budget checked at every
submission, and a summary by month or status, read it instead of every group of another one.

Spends written without the ORM (the bulk demo loader) `count` them into deltas and `write` those
with the rows, or `rebuild` afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Literal, cast

from sqlalchemy import (
    Row,
    Table,
    and_,
    delete,
    extract,
    func,
    insert,
    inspect,
    literal,
    select,
)
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction
from sqlalchemy.sql.dml import Insert

from spendtrackr.apps.spends.models import NO_GROUP, Spend, SpendTotal
from spendtrackr.core.db import exact_sum

Dimension = Literal["company", "category", "vendor", "team"]
# Each dimension's grouping column on the spend (none: the company's one group, `NO_GROUP`).
DIMENSIONS: dict[Dimension, str | None] = {
    "company": None,
    "category": "category_id",
    "vendor": "vendor_id",
    "team": "team_id",
}
# What a spend's place in the totals depends on.
_COUNTED = (
    "company_id",
    "spend_date",
    "currency",
    "status",
    "amount",
    "base_amount",
    *(column for column in DIMENSIONS.values() if column is not None),
)

_TABLE = cast(Table, SpendTotal.__table__)
_KEY_COLUMNS = ("company_id", "dimension", "group_id", "spend_date", "currency", "status")
_DELTAS = "spend_total_deltas"

# (company_id, dimension, group_id, spend_date, currency, status)
Key = tuple[uuid.UUID, str, uuid.UUID, date, str, str]
# Net changes by key, per open transaction (a savepoint's own until it is released).
Deltas = dict[Key, list[Any]]  # [count, total, base_total]


def count(deltas: Deltas, values: Mapping[str, Any], sign: int = 1) -> None:
    """Add one spend (its counted columns by name) to `deltas`, or take it away (`sign=-1`)."""
    amount: Decimal = values["amount"]
    base: Decimal = values["base_amount"]
    for dimension, column in DIMENSIONS.items():
        group = None if column is None else values[column]
        key = (
            values["company_id"],
            dimension,
            NO_GROUP if group is None else group,
            values["spend_date"],
            values["currency"],
            values["status"],
        )
        _add(deltas, key, sign, sign * amount, sign * base)


def _add(deltas: Deltas, key: Key, spends: int, total: Decimal, base_total: Decimal) -> None:
    delta = deltas.get(key)
    if delta is None:
        deltas[key] = [spends, total, base_total]
    else:
        delta[0] += spends
        delta[1] += total
        delta[2] += base_total


def _current(spend: Spend) -> dict[str, Any]:
    return {name: getattr(spend, name) for name in _COUNTED}


def _before(spend: Spend) -> tuple[dict[str, Any], bool]:
    """The spend's counted values as the database held them before this flush, and whether any
    of them changed."""
    state = inspect(spend)
    values = {}
    changed = False
    for name in _COUNTED:
        history = state.attrs[name].load_history()
        if history.added or history.deleted:
            changed = True
            values[name] = history.deleted[0] if history.deleted else None
        else:
            values[name] = history.unchanged[0] if history.unchanged else getattr(spend, name)
    return values, changed


def _open_deltas(session: Session) -> Deltas:
    transaction = session.get_nested_transaction() or session.get_transaction()
    assert transaction is not None  # a flush always runs in a transaction
    by_transaction: dict[SessionTransaction, Deltas] = session.info.setdefault(_DELTAS, {})
    return by_transaction.setdefault(transaction, {})


def note_changes(session: Session, _flush: UOWTransaction) -> None:
    deltas: Deltas | None = None
    for obj in session.new:
        if isinstance(obj, Spend):
            deltas = deltas if deltas is not None else _open_deltas(session)
            count(deltas, _current(obj), +1)
    for obj in session.dirty:
        if isinstance(obj, Spend):
            before, changed = _before(obj)
            if changed:
                deltas = deltas if deltas is not None else _open_deltas(session)
                count(deltas, before, -1)
                count(deltas, _current(obj), +1)
    for obj in session.deleted:
        if isinstance(obj, Spend):
            deltas = deltas if deltas is not None else _open_deltas(session)
            count(deltas, _before(obj)[0], -1)


def drop_rolled_back(session: Session) -> None:
    """A savepoint or the whole transaction rolled back (the event fires before the transaction
    closes, while it is still the session's innermost): its changes never happened."""
    by_transaction: dict[SessionTransaction, Deltas] | None = session.info.get(_DELTAS)
    ending = session.get_nested_transaction() or session.get_transaction()
    if by_transaction and ending is not None:
        by_transaction.pop(ending, None)


def fold_released_savepoint(session: Session, transaction: SessionTransaction) -> None:
    """A released savepoint hands what it changed to the transaction around it."""
    by_transaction: dict[SessionTransaction, Deltas] | None = session.info.get(_DELTAS)
    if not by_transaction:
        return
    if transaction.parent is None:
        session.info.pop(_DELTAS, None)
        return
    mine = by_transaction.pop(transaction, None)
    if mine:
        outer = by_transaction.setdefault(transaction.parent, {})
        for key, (spends, total, base_total) in mine.items():
            _add(outer, key, spends, total, base_total)


def unwritten(session: Session) -> Deltas:
    """What the open transaction and its savepoints changed and have not written yet (as of the
    last flush): a reader of the totals inside the transaction adds these to what it reads."""
    merged: Deltas = {}
    by_transaction: dict[SessionTransaction, Deltas] = session.info.get(_DELTAS) or {}
    for deltas in by_transaction.values():
        for key, (spends, total, base_total) in deltas.items():
            _add(merged, key, spends, total, base_total)
    return merged


def write_before_commit(session: Session) -> None:
    """The transaction's deltas, upserted just before it commits (and before the audit append,
    so that the chain head stays the last lock of every transaction: spendtrackr/sessions.py)."""
    if session.in_nested_transaction():
        return
    session.flush()
    transaction = session.get_transaction()
    by_transaction: dict[SessionTransaction, Deltas] = session.info.get(_DELTAS) or {}
    deltas = by_transaction.pop(transaction, None) if transaction is not None else None
    if deltas:
        write(session, deltas)


def write(session: Session, deltas: Deltas) -> None:
    """Apply net changes to the totals: one upsert, rows in a fixed order."""
    rows = [
        {
            **dict(zip(_KEY_COLUMNS, key, strict=True)),
            "spend_count": count,
            "total": total,
            "base_total": base_total,
        }
        for key, (count, total, base_total) in sorted(deltas.items(), key=_order)
        if count or total or base_total
    ]
    if rows:
        # One statement for any number of rows, compiled once per process: executed with a list
        # of parameter sets, it goes out as one multi-row INSERT (SQLAlchemy's "insertmanyvalues"
        # on MySQL, in the given order), while `.values(rows)` would be compiled anew each time.
        sqlite_db = session.get_bind().dialect.name == "sqlite"
        session.execute(_UPSERT_SQLITE if sqlite_db else _UPSERT_MYSQL, rows)


def _order(item: tuple[Key, list[Any]]) -> tuple[str, str, str, date, str, str]:
    company_id, dimension, group_id, day, currency, status = item[0]
    return (company_id.hex, dimension, group_id.hex, day, currency, status)


def _upsert_sqlite() -> Insert:
    stmt = sqlite.insert(_TABLE)
    return stmt.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS),
        set_={
            "spend_count": _TABLE.c.spend_count + stmt.excluded.spend_count,
            "total": _TABLE.c.total + stmt.excluded.total,
            "base_total": _TABLE.c.base_total + stmt.excluded.base_total,
        },
    )


def _upsert_mysql() -> Insert:
    stmt = mysql.insert(_TABLE)
    return stmt.on_duplicate_key_update(
        spend_count=_TABLE.c.spend_count + stmt.inserted.spend_count,
        total=_TABLE.c.total + stmt.inserted.total,
        base_total=_TABLE.c.base_total + stmt.inserted.base_total,
    )


_UPSERT_SQLITE = _upsert_sqlite()
_UPSERT_MYSQL = _upsert_mysql()


# --- reading -----------------------------------------------------------------------------------


def summarize(
    session: Session,
    *,
    company_id: uuid.UUID,
    group_by: str,
    date_from: date | None,
    date_to: date | None,
    statuses: list[str],
) -> Iterable[Row[Any]]:
    """(group key..., currency, count, total, base total) per group and currency, from the
    totals, for `group_by` in category, vendor, team, month or status. Months and statuses add
    up the company's own rows (one group: a day's spends by currency and status)."""
    t = SpendTotal
    dimension = group_by if group_by in DIMENSIONS else "company"
    columns: list[Any]
    if group_by == "month":
        columns = [extract("year", t.spend_date), extract("month", t.spend_date)]
    elif group_by == "status":
        columns = [t.status]
    else:
        columns = [t.group_id]
    conditions = [t.company_id == company_id, t.dimension == dimension]
    if date_from is not None:
        conditions.append(t.spend_date >= date_from)
    if date_to is not None:
        conditions.append(t.spend_date <= date_to)
    if statuses:
        conditions.append(t.status.in_(statuses))
    count = func.sum(t.spend_count)
    stmt = (
        select(*columns, t.currency, count, func.sum(t.total), func.sum(t.base_total))
        .where(and_(*conditions))
        .group_by(*columns, t.currency)
        .having(count > 0)
    )
    return session.execute(stmt)


# --- rebuilding --------------------------------------------------------------------------------


def rebuild(session: Session, *, company_id: uuid.UUID | None = None) -> int:
    """Recompute the totals from the spends (one company's, or all): after spends were written
    without the ORM (a bulk load, a restore). Run it while the company's spends are not being
    changed: a spend committed during the rebuild may be counted twice or not at all. Returns the
    number of total rows written."""
    delete_stmt = delete(SpendTotal)
    if company_id is not None:
        delete_stmt = delete_stmt.where(SpendTotal.company_id == company_id)
    session.execute(delete_stmt)
    written = 0
    for dimension, column in DIMENSIONS.items():
        written += session.execute(
            _rebuild_dimension(session, dimension, column, company_id)
        ).rowcount  # type: ignore[attr-defined]
    return written


def _rebuild_dimension(
    session: Session, dimension: str, column: str | None, company_id: uuid.UUID | None
) -> Insert:
    s = Spend
    no_group = literal(NO_GROUP, SpendTotal.group_id.type)
    group = no_group if column is None else func.coalesce(getattr(s, column), no_group)
    dialect = session.get_bind().dialect.name
    total = exact_sum(s.amount, dialect)
    base_total = exact_sum(s.base_amount, dialect)
    query = select(
        s.company_id,
        literal(dimension),
        group,
        s.spend_date,
        s.currency,
        s.status,
        func.count(),
        total,
        base_total,
    ).group_by(s.company_id, group, s.spend_date, s.currency, s.status)
    if company_id is not None:
        query = query.where(s.company_id == company_id)
    return insert(SpendTotal).from_select(
        [*_KEY_COLUMNS, "spend_count", "total", "base_total"], query
    )
