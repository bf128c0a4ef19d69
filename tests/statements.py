"""The SQL statements a block of a test sent, as the database received them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def statements_sent(which: Callable[[str], bool]) -> Iterator[list[str]]:
    """The statements, of those `which` picks, that any engine sent meanwhile."""
    seen: list[str] = []

    def sent(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if which(statement):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", sent)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", sent)
