"""Rows read as JSON documents that the database builds (`JSON_OBJECT`, `json_object`).

A page of fifty spends is 50 rows of 18 columns. Read as columns, PyMySQL parses every value in
Python (about 5 us each, plus each result's column descriptors) and SQLAlchemy then converts each
one (UUIDs, datetimes, JSON); read as one JSON document per row, the database renders the values
and `json.loads` parses them in C. The documents hold the columns' plain values: the read models
(Pydantic) still do every conversion and all the rendering, so there is one renderer either way.

Measured on the 50-spend page (MariaDB, in-process, 400 runs): the columns cost 1.1-1.3 ms of
the client's CPU and 0.28 ms of the server's, the documents 0.33-0.35 and 0.43-0.45. Nesting each
spend's steps and receipts as correlated subqueries (`JSON_ARRAYAGG`) would save the client
another 0.5 ms but cost the server 0.6 ms more than the two `IN` queries they replace: the
database is the tier that does not scale out, so they stay separate queries.

Portable across MySQL 8, MariaDB and SQLite: `json_object` exists on all three; how a JSON
column is embedded (as JSON, not as a string holding JSON) is compiled per dialect below. What
comes back is JSON text's types: decimals as strings (cast here, never a float), datetimes as
naive UTC text (`UtcDatetime` in `core.schemas` makes them aware), UUIDs as the column stores
them (with or without dashes), booleans as 1/0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import JSON, ColumnElement, Numeric, String, cast, func, literal_column, type_coerce
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")

# A column of a table, or of a mapped class (`Spend.id`).
ColumnLike = ColumnElement[Any] | QueryableAttribute[Any]


class embedded_json(FunctionElement[Any]):
    """A JSON column's value, to be embedded in a document as JSON rather than as a string holding
    JSON."""

    name = "embedded_json"
    inherit_cache = True
    type = JSON()


@compiles(embedded_json)
def _embedded_json(element: embedded_json, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json({compiler.process(element.clauses, **kw)})"


@compiles(embedded_json, "mysql")
@compiles(embedded_json, "mariadb")
def _embedded_json_mysql(element: embedded_json, compiler: SQLCompiler, **kw: Any) -> str:
    return f"JSON_EXTRACT({compiler.process(element.clauses, **kw)}, '$')"


def _value(column: ColumnLike) -> ColumnLike:
    if isinstance(column.type, JSON):
        return embedded_json(column)
    if isinstance(column.type, Numeric):
        return cast(column, String)  # exact: a JSON number would come back as a float
    return column


def document(fields: Mapping[str, ColumnLike]) -> ColumnElement[Any]:
    """One JSON object per row, `{name: value}`, read back as a dict. Build it once (module level):
    the statement's cache key is then memoized with it."""
    arguments: list[ColumnLike] = []
    for key, column in fields.items():
        if not _KEY.match(key):  # keys are rendered into the SQL: our own names only
            raise ValueError(f"not a document key: {key!r}")
        arguments += [literal_column(f"'{key}'"), _value(column)]
    return type_coerce(func.json_object(*arguments), JSON())
