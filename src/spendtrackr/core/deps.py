"""Typed dependencies on what the application holds, built once by `main.create_app`.

A route asks for `settings: SettingsDep` rather than reading `request.app.state`, so what it
needs is in its signature and a test swaps one with `app.dependency_overrides[current_settings]`.
They are `async` and do no I/O, so FastAPI resolves them without a trip to the thread pool.
(The request's own session, `core.db.SessionDep`, and the pools of work that outlives a request,
read receipts and probes, stay where they are used.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from spendtrackr.core.cache import Cache
from spendtrackr.core.clock import Clock
from spendtrackr.core.config import Settings
from spendtrackr.core.ratelimit import RateLimiter
from spendtrackr.core.security import Passwords, Tokens
from spendtrackr.core.storage import Storage


async def current_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def current_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


async def current_passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


async def current_tokens(request: Request) -> Tokens:
    tokens: Tokens = request.app.state.tokens
    return tokens


async def current_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


async def current_cache(request: Request) -> Cache:
    cache: Cache = request.app.state.cache
    return cache


async def current_time(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


SettingsDep = Annotated[Settings, Depends(current_settings)]
StorageDep = Annotated[Storage, Depends(current_storage)]
PasswordsDep = Annotated[Passwords, Depends(current_passwords)]
TokensDep = Annotated[Tokens, Depends(current_tokens)]
LimiterDep = Annotated[RateLimiter, Depends(current_limiter)]
CacheDep = Annotated[Cache, Depends(current_cache)]
NowDep = Annotated[datetime, Depends(current_time)]
