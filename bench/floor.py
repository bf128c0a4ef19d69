"""The floor: the thinnest honest version of the same job on the same stack.

One sync FastAPI route that verifies the same kind of JWT (PyJWT, same algorithm, audience and
issuer checks) and inserts one row through the same SQLAlchemy engine setup and driver, served
by the same uvicorn settings and thread pool. Every scenario is reported as a ratio to it,
measured in the same run, because absolute numbers on a shared 2-core machine drift.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException
from sqlalchemy import Column, MetaData, String, Table, Uuid, insert
from sqlalchemy.orm import Session

from spendtrackr.core.config import get_settings
from spendtrackr.core.db import build_engine, size_thread_pool

settings = get_settings()
engine = build_engine(settings)
metadata = MetaData()
floor_row = Table(
    "bench_floor",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", String(36)),
    Column("note", String(200)),
)
metadata.create_all(engine)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The API's thread pool, sized the API's way: its size moves both by a lot on these
    # machines, so the two must share it for the ratio to compare the apps.
    size_thread_pool(settings)
    yield


app = FastAPI(lifespan=lifespan)


def claims(authorization: Annotated[str, Header()]) -> dict[str, str]:
    try:
        return jwt.decode(
            authorization.removeprefix("Bearer "),
            settings.jwt_secret.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
    except jwt.PyJWTError:
        raise HTTPException(401) from None


@app.post("/floor", status_code=201)
def floor(
    body: dict[str, str], token: Annotated[dict[str, str], Depends(claims)]
) -> dict[str, str]:
    row_id = uuid.uuid4()
    with Session(engine) as session, session.begin():
        session.execute(
            insert(floor_row).values(id=row_id, user_id=token["sub"], note=body.get("note", ""))
        )
    return {"id": str(row_id)}
