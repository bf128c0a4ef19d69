from __future__ import annotations

import uuid
from datetime import datetime

from spendtrackr.core.schemas import GLCode, Name, Schema, UpdateSchema, WriteSchema


class VendorRead(Schema):
    id: uuid.UUID
    name: str
    created_at: datetime


class VendorCreate(WriteSchema):
    name: Name


class VendorUpdate(UpdateSchema):
    name: Name | None = None


class CategoryRead(Schema):
    id: uuid.UUID
    name: str
    gl_code: str | None
    created_at: datetime


class CategoryCreate(WriteSchema):
    name: Name
    gl_code: GLCode | None = None


class CategoryUpdate(UpdateSchema):
    nullable = frozenset({"gl_code"})

    name: Name | None = None
    gl_code: GLCode | None = None
