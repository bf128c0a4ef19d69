"""The time, through one dependency, so that tests can move it (interval rollovers)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

Clock = Callable[[], datetime]


async def current_time(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


NowDep = Annotated[datetime, Depends(current_time)]
