"""Rate limits with the `limits` library (Redis storage when configured, memory otherwise).

A limited request gets 429 `rate_limited` with `Retry-After` and the IETF httpapi draft headers
`RateLimit-Policy` and `RateLimit`. When Redis is down the limiter fails open: availability of the
API matters more than a counter, and the failure is logged.

Limits of a hundred or more a window (the API's per user, 1,200 a minute by default) are counted
in batches: a process lets up to `limit // 100` hits (at most 32) through on the count Redis gave
it last, then adds them with one INCRBY, saving a Redis round trip on most requests
(docs/DESIGN.md says what it cost). A process never lets a
limit be passed on its own (it syncs before the last hits of a window), so processes together
pass it by at most their batches. Smaller limits (login, signup) count every hit in Redis.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from spendtrackr.core.config import Settings
from spendtrackr.core.errors import RateLimited
from spendtrackr.core.lru import LruCache

logger = logging.getLogger(__name__)

MAX_BATCH = 32
SYNC_SECONDS = 1.0  # hits let through are added to Redis at least this often


@dataclass
class _Tally:
    """One limit's window as this process sees it: the count Redis gave at the last sync, and
    the hits let through since."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    known: int = 0
    pending: int = 0
    synced_at: float = -math.inf


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        if settings.redis_url:
            storage = storage_from_string(
                settings.redis_url,
                wrap_exceptions=True,
                socket_timeout=settings.redis_timeout_seconds,
                socket_connect_timeout=settings.redis_timeout_seconds,
            )
        else:
            storage = storage_from_string("memory://")
        # A sync storage (from a redis:// or memory:// URL), whose calls return their values.
        self._storage = cast(Storage, storage)
        self._limiter = FixedWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {}
        self._tallies: LruCache[str, _Tally] = LruCache(10_000)
        self._last_warning = 0.0

    def _item(self, rule: str) -> RateLimitItem:
        item = self._items.get(rule)
        if item is None:
            item = self._items[rule] = parse(rule)
        return item

    def check(self, policy: str, rule: str, *identifiers: str) -> None:
        """Count one hit of `policy` for `identifiers`; raise RateLimited when over the rule."""
        if not self.enabled or not rule:
            return
        item = self._item(rule)
        with self._failing_open():
            if self._hit(item, policy, identifiers):
                return
            self._refuse(item, policy, identifiers)

    def ensure_under(self, policy: str, rule: str, *identifiers: str) -> None:
        """Raise RateLimited when `policy` is already at its limit, without counting a hit (for
        counters of failures, which `count` adds to once the outcome is known)."""
        if not self.enabled or not rule:
            return
        item = self._item(rule)
        with self._failing_open():
            if not self._limiter.test(item, policy, *identifiers):
                self._refuse(item, policy, identifiers)

    def count(self, policy: str, rule: str, *identifiers: str) -> None:
        """Add one hit, whatever the count (a failure that already happened)."""
        if not self.enabled or not rule:
            return
        with self._failing_open():
            self._limiter.hit(self._item(rule), policy, *identifiers)

    @contextlib.contextmanager
    def _failing_open(self) -> Iterator[None]:
        try:
            yield
        except StorageError as exc:
            now = time.monotonic()
            if now - self._last_warning > 10:
                self._last_warning = now
                logger.warning("rate limit storage unavailable, failing open: %s", exc)

    def _refuse(self, item: RateLimitItem, policy: str, identifiers: tuple[str, ...]) -> None:
        stats = self._limiter.get_window_stats(item, policy, *identifiers)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        window = item.get_expiry()
        raise RateLimited(
            "Too many requests, retry later",
            headers={
                "Retry-After": str(reset),
                "RateLimit-Policy": f'"{policy}";q={item.amount};w={window}',
                "RateLimit": f'"{policy}";r={stats.remaining};t={reset}',
            },
        )

    def _hit(self, item: RateLimitItem, policy: str, identifiers: tuple[str, ...]) -> bool:
        """Count one hit; False when it is over the limit."""
        batch = min(MAX_BATCH, item.amount // 100)
        if batch <= 1:
            return self._limiter.hit(item, policy, *identifiers)
        key = item.key_for(policy, *identifiers)
        tally = self._tallies.get(key) or self._tallies.setdefault(key, _Tally())
        with tally.lock:
            now = time.monotonic()
            if (
                tally.pending < batch - 1
                and tally.known + tally.pending + 1 < item.amount
                and now - tally.synced_at < SYNC_SECONDS
            ):
                tally.pending += 1
                return True
            hits, tally.pending, tally.synced_at = tally.pending + 1, 0, now
            tally.known = self._storage.incr(key, item.get_expiry(), amount=hits)
            return tally.known <= item.amount

    def reset(self) -> None:
        self._tallies = LruCache(10_000)
        try:
            self._storage.reset()
        except StorageError:
            logger.warning("could not reset rate limit storage")
