"""What the accounting export's marking takes and answers."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from spendtrackr.core.schemas import FilterDate, Schema, WriteSchema


class MarkExported(WriteSchema):
    date_from: FilterDate | None = None
    date_to: FilterDate | None = None
    line_ids: Annotated[list[uuid.UUID], Field(max_length=10000)] | None = None


class Marked(Schema):
    status: str = "ok"
    marked: int
