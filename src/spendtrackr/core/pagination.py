"""Pagination: `?limit` (1..200, default 50) and `?offset` (>= 0) -> `{total, items}`."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Self, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.orm import Session

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
    total: int = Field(description=f"Matching items; counted up to {COUNT_CAP:,}")
    items: list[T]
    total_capped: bool = Field(
        default=False, description=f"True when more than {COUNT_CAP:,} match"
    )

    @model_validator(mode="after")
    def _cap(self) -> Self:
        if self.total > COUNT_CAP:
            self.total, self.total_capped = COUNT_CAP, True
        return self


# Recent list totals. A caller that can name its data's version (a company's audit chain head
# moves with every change it makes) keys the total by it, so a repeated count of an unchanged
# tenant costs nothing and a changed one is counted again.
counts: LruCache[Hashable, int] = LruCache(4096)


def paginate(
    session: Session, stmt: Select[Any], page: PageParams, *, count_key: Hashable | None = None
) -> tuple[int, list[Any]]:
    """Count the filtered rows (up to COUNT_CAP + 1), then fetch one page of `stmt` (which
    carries its own order_by): its entities, or its rows when it selects several columns.
    `count_key` (the query and its data's version) reuses a total counted before under the
    same key."""
    total = None if count_key is None else counts.get(count_key)
    if total is None:
        capped: Select[Any] = (
            stmt.order_by(None).with_only_columns(literal_column("1")).limit(COUNT_CAP + 1)
        )
        total = session.scalar(select(func.count()).select_from(capped.subquery())) or 0
        if count_key is not None:
            counts.put(count_key, total)
    if not total:
        return 0, []
    result = session.execute(stmt.limit(page.limit).offset(page.offset))
    # A select of one entity (or column) pages through its objects, a select of columns
    # through rows.
    single = len(stmt.column_descriptions) == 1
    return total, list(result.scalars() if single else result)
