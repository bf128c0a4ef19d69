"""A small key-value interface: Redis when REDIS_URL is set, an in-process stand-in otherwise.

Callers use it for fast paths only (locks that turn concurrent duplicates into a quick 409);
the database stays the guarantee. When Redis is configured but down every operation
degrades (`CacheUnavailable` from `set_nx`, False from `ping`) and the app keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import redis

logger = logging.getLogger(__name__)


class CacheUnavailable(Exception):
    """The configured cache did not answer; callers fall back to the database."""


class Cache(Protocol):
    backend: str

    def set_nx(self, key: str, value: str, ttl_seconds: int) -> bool: ...
    def set(self, key: str, value: str, ttl_seconds: float) -> None: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...


class MemoryCache:
    """Process-local stand-in; correct for one process, which is what the embedded default runs."""

    backend = "memory"

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def set_nx(self, key: str, value: str, ttl_seconds: int) -> bool:
        now = time.monotonic()
        with self._lock:
            current = self._data.get(key)
            if current is not None and current[1] > now:
                return False
            self._put(key, value, ttl_seconds, now)
            return True

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        with self._lock:
            self._put(key, value, ttl_seconds, time.monotonic())

    def _put(self, key: str, value: str, ttl_seconds: float, now: float) -> None:
        """Under the lock. Bounded: past 100,000 keys, what has expired is dropped."""
        self._data[key] = (value, now + ttl_seconds)
        if len(self._data) > 100_000:
            self._data = {k: v for k, v in self._data.items() if v[1] > now}

    def exists(self, key: str) -> bool:
        current = self._data.get(key)
        return current is not None and current[1] > time.monotonic()

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self._data.clear()


class RedisCache:
    backend = "redis"

    def __init__(self, url: str, timeout: float) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            decode_responses=True,
        )
        self._last_warning = 0.0

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:  # one line per 10 s, not one per request
            self._last_warning = now
            logger.warning("redis unavailable, degrading to the database: %s", exc)

    def set_nx(self, key: str, value: str, ttl_seconds: int) -> bool:
        try:
            return bool(self._client.set(key, value, nx=True, ex=ttl_seconds))
        except redis.RedisError as exc:
            self._warn(exc)
            raise CacheUnavailable(str(exc)) from exc

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        try:
            self._client.set(key, value, px=max(1, int(ttl_seconds * 1000)))
        except redis.RedisError as exc:
            self._warn(exc)
            raise CacheUnavailable(str(exc)) from exc

    def exists(self, key: str) -> bool:
        try:
            return bool(self._client.exists(key))
        except redis.RedisError as exc:
            self._warn(exc)
            raise CacheUnavailable(str(exc)) from exc

    def delete(self, key: str) -> None:
        try:
            self._client.delete(key)
        except redis.RedisError as exc:
            self._warn(exc)

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError as exc:
            self._warn(exc)
            return False

    def close(self) -> None:
        self._client.close()


def build_cache(redis_url: str | None, timeout: float) -> Cache:
    if redis_url:
        return RedisCache(redis_url, timeout)
    return MemoryCache()
