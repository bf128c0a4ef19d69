"""Rate limits with the `limits` library (Redis storage when configured, memory otherwise).

A limited request gets 429 `rate_limited` with `Retry-After` and the IETF httpapi draft headers
`RateLimit-Policy` and `RateLimit`. When Redis is down the limiter fails open: availability of the
API matters more than a counter, and the failure is logged.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from spendtrackr.core.config import Settings
from spendtrackr.core.errors import RateLimited

logger = logging.getLogger(__name__)


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
        self._storage = storage
        self._limiter = FixedWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {}
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
        try:
            if self._limiter.hit(item, policy, *identifiers):
                return
            stats = self._limiter.get_window_stats(item, policy, *identifiers)
        except StorageError as exc:
            now = time.monotonic()
            if now - self._last_warning > 10:
                self._last_warning = now
                logger.warning("rate limit storage unavailable, failing open: %s", exc)
            return
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

    def reset(self) -> None:
        try:
            self._storage.reset()
        except StorageError:
            logger.warning("could not reset rate limit storage")
