"""Pagination: `?limit` (1..200, default 50) and `?offset` (>= 0) -> `{total, items}`.

Lists that integrators sync from also page by cursor (`SyncPageDep`): `?updated_since` and/or
`?cursor` switch them to keyset order by `(updated_at, id)`, oldest change first, and the answer
carries `next_cursor` and `has_more`. Rows changed in the last `SYNC_SETTLE_SECONDS` are left
for the next page: a change's `updated_at` is set before its transaction commits, so a row
stamped just before the cursor could still become visible behind it.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, Self, TypeVar

from fastapi import Depends, Query
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy import Select, and_, func, literal_column, or_, select
from sqlalchemy.orm import Session

from spendtrackr.core.db import force_index
from spendtrackr.core.deps import NowDep, SettingsDep
from spendtrackr.core.errors import ValidationFailed
from spendtrackr.core.lru import LruCache

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


# Counting every matching row of a million-row tenant costs a full index range scan per page;
# totals are exact up to this many rows and reported as this number beyond it (`total_capped`).
COUNT_CAP = 10_000


class Page(BaseModel, Generic[T]):
    total: int | None = Field(
        description=f"Matching items; counted up to {COUNT_CAP:,} (null when paging by cursor)"
    )
    items: list[T]
    total_capped: bool = Field(
        default=False, description=f"True when more than {COUNT_CAP:,} match"
    )
    next_cursor: str | None = Field(
        default=None,
        description="Paging by cursor: pass as `cursor` for the next page; also when `has_more` "
        "is false, to ask later for what changed since",
    )
    has_more: bool | None = Field(default=None, description="Paging by cursor: another page waits")

    @model_validator(mode="after")
    def _cap(self) -> Self:
        if self.total is not None and self.total > COUNT_CAP:
            self.total, self.total_capped = COUNT_CAP, True
        return self


# Recent list totals. A caller that can name its data's version (a company's audit chain head
# moves with every change it makes) keys the total by it, so a repeated count of an unchanged
# tenant costs nothing and a changed one is counted again.
counts: LruCache[Hashable, int] = LruCache(4096)


def counted(count_key: Hashable | None, count: Callable[[], int | None]) -> int:
    """The total counted before under `count_key` (the query and its data's version), else
    `count()`, kept under the key when there is one."""
    total = None if count_key is None else counts.get(count_key)
    if total is None:
        total = count() or 0
        if count_key is not None:
            counts.put(count_key, total)
    return total


def _count_capped(session: Session, stmt: Select[Any]) -> int | None:
    """How many rows `stmt` selects, up to COUNT_CAP + 1. Called only when no total is kept:
    building the statement costs about 46 us, on every page whose total is reused."""
    capped: Select[Any] = (
        stmt.order_by(None).with_only_columns(literal_column("1")).limit(COUNT_CAP + 1)
    )
    return session.scalar(select(func.count()).select_from(capped.subquery()))


def paginate(
    session: Session,
    stmt: Select[Any],
    page: PageParams,
    *,
    count_key: Hashable | None = None,
    rows_of: Callable[[Select[Any]], Select[Any]] | None = None,
) -> tuple[int, list[Any]]:
    """Count the filtered rows (up to COUNT_CAP + 1), then fetch one page of `stmt` (which
    carries its own order_by): its entities, or its rows when it selects several columns.
    `count_key` (the query and its data's version) reuses a total counted before under the
    same key. `rows_of`, given the page (`stmt` with its limit and offset), makes the statement
    that reads it instead: a deferred join, which picks the page's keys through an index alone
    and reads only those rows."""
    total = counted(count_key, lambda: _count_capped(session, stmt))
    if not total:
        return 0, []
    chosen = stmt.limit(page.limit).offset(page.offset)
    result = session.execute(chosen if rows_of is None else rows_of(chosen))
    # A select of one entity (or column) pages through its objects, a select of columns
    # through rows.
    single = len(stmt.column_descriptions) == 1
    return total, list(result.scalars() if single else result)


# --- paging by cursor -------------------------------------------------------------------------


class InvalidCursor(ValidationFailed):
    code = "invalid_cursor"


def encode_cursor(at: datetime, ident: uuid.UUID) -> str:
    raw = json.dumps([at.isoformat(), str(ident)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, ident = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(ident)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidCursor("cursor: not a cursor this API gave") from None


@dataclass(frozen=True, slots=True)
class SyncParams:
    limit: int
    offset: int
    cursor: tuple[datetime, uuid.UUID] | None
    updated_since: datetime | None
    settled_before: datetime  # rows changed since are left for a later call

    @property
    def by_cursor(self) -> bool:
        return self.cursor is not None or self.updated_since is not None

    @property
    def page(self) -> PageParams:
        return PageParams(limit=self.limit, offset=self.offset)


async def sync_params(
    settings: SettingsDep,
    now: NowDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    offset: Annotated[
        int, Query(ge=0, le=10_000_000, description="Items to skip (not with `cursor`)")
    ] = 0,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="A `next_cursor`: page by `(updated_at, id)` from it"),
    ] = None,
    updated_since: Annotated[
        AwareDatetime | None,
        Query(description="Only items changed at or after this time; pages by cursor"),
    ] = None,
) -> SyncParams:
    if cursor is not None and offset:
        raise InvalidCursor("offset: not with a cursor")
    return SyncParams(
        limit=limit,
        offset=offset,
        cursor=None if cursor is None else decode_cursor(cursor),
        updated_since=updated_since,
        settled_before=now - timedelta(seconds=settings.sync_settle_seconds),
    )


SyncPageDep = Annotated[SyncParams, Depends(sync_params)]


@dataclass(frozen=True, slots=True)
class Listed:
    """A page of rows or entities as a service found it (`next_cursor`, `has_more`: by cursor)."""

    total: int | None
    rows: list[Any]
    next_cursor: str | None = None
    has_more: bool | None = None

    def page(self, items: list[T]) -> Page[T]:
        return Page(
            total=self.total, items=items, next_cursor=self.next_cursor, has_more=self.has_more
        )


def listing(
    session: Session,
    stmt: Select[Any],
    params: SyncParams,
    *,
    updated: Any,
    ident: Any,
    count_key: Hashable | None = None,
    keyset_index: str | None = None,
    rows_of: Callable[[Select[Any]], Select[Any]] | None = None,
) -> Listed:
    """`stmt` (ordered for offset pages) by offset (its page read through `rows_of` if given,
    see `paginate`), or by cursor when asked (through `keyset_index` if given, see
    `keyset_page`)."""
    if params.by_cursor:
        return keyset_page(
            session, stmt, updated=updated, ident=ident, params=params, index=keyset_index
        )
    total, rows = paginate(session, stmt, params.page, count_key=count_key, rows_of=rows_of)
    return Listed(total=total, rows=rows)


def keyset_page(
    session: Session,
    stmt: Select[Any],
    *,
    updated: Any,
    ident: Any,
    params: SyncParams,
    index: str | None = None,
) -> Listed:
    """A page of `stmt` in `(updated, ident)` order after the cursor. Rows changed at or after
    `params.settled_before` wait for a later call.

    `index` (company, updated, ident) is forced on MySQL/MariaDB when the caller knows nothing
    narrower filters the rows: with ORDER BY ... LIMIT, MariaDB reads that index by the company
    alone (`ref`) rather than from the cursor on (`range`), and a page in the middle of a 1M
    tenant read half a million entries (110 ms instead of under one)."""
    stmt = (
        stmt.order_by(None)
        .order_by(updated.asc(), ident.asc())
        .where(updated < params.settled_before)
    )
    if params.updated_since is not None:
        stmt = stmt.where(updated >= params.updated_since)
    if params.cursor is not None:
        at, last = params.cursor
        # `updated >= at` says the same as the OR, as a range the index can start from: with the
        # OR alone, MariaDB read the index from the company's first row up to the cursor (half
        # a million entries for a page in the middle of a 1M tenant).
        stmt = stmt.where(updated >= at, or_(updated > at, and_(updated == at, ident > last)))
    if index is not None:
        stmt = force_index(stmt, updated.class_, index)
    result = session.execute(stmt.limit(params.limit + 1))
    rows = list(result.scalars() if len(stmt.column_descriptions) == 1 else result)
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    if rows:
        tail = rows[-1]
        next_cursor: str | None = encode_cursor(
            getattr(tail, updated.key), getattr(tail, ident.key)
        )
    elif params.cursor is not None:
        next_cursor = encode_cursor(*params.cursor)
    else:
        next_cursor = None
    return Listed(total=None, rows=rows, next_cursor=next_cursor, has_more=more)
