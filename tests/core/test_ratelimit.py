"""The rate limiter's counting: exact for small limits, in batches for large ones, and never
past a limit within one process. Against Redis when the suite has one, else in memory."""

from __future__ import annotations

import os
import uuid

import pytest

from spendtrackr.core.config import Settings
from spendtrackr.core.errors import RateLimited
from spendtrackr.core.ratelimit import RateLimiter
from tests.conftest import make_settings


def _limiter(settings: Settings) -> tuple[RateLimiter, list[int]]:
    """A limiter on the suite's storage, recording the amount of each increment it sends."""
    limiter = RateLimiter(
        make_settings(settings.database_url, redis_url=os.environ.get("TEST_REDIS_URL") or None)
    )
    sent: list[int] = []
    incr = limiter._storage.incr

    def counting(key: str, expiry: int, amount: int = 1) -> int:
        sent.append(amount)
        return incr(key, expiry, amount=amount)

    limiter._storage.incr = counting  # type: ignore[method-assign]
    return limiter, sent


def _passed(limiter: RateLimiter, rule: str, who: str, hits: int) -> int:
    passed = 0
    for _ in range(hits):
        try:
            limiter.check("api", rule, who)
            passed += 1
        except RateLimited:
            pass
    return passed


def test_a_large_limit_is_exact_in_one_process_with_a_tenth_of_the_round_trips(
    settings: Settings,
) -> None:
    limiter, sent = _limiter(settings)
    who = uuid.uuid4().hex
    assert _passed(limiter, "1000/minute", who, 1000) == 1000
    # batches of ten: one increment for every ten hits
    assert len(sent) <= 110
    assert sum(sent) == 1000
    with pytest.raises(RateLimited) as over:
        limiter.check("api", "1000/minute", who)
    assert over.value.headers is not None
    assert over.value.headers["RateLimit-Policy"] == '"api";q=1000;w=60'
    assert over.value.headers["RateLimit"].startswith('"api";r=0;t=')


def test_a_small_limit_counts_every_hit_where_it_is_kept(settings: Settings) -> None:
    limiter, sent = _limiter(settings)
    who = uuid.uuid4().hex
    assert _passed(limiter, "20/minute", who, 25) == 20
    assert sent == [1] * 25


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="processes share Redis")
def test_processes_together_pass_a_limit_by_at_most_their_batches(settings: Settings) -> None:
    first, _ = _limiter(settings)
    second, _ = _limiter(settings)
    who = uuid.uuid4().hex
    passed = 0
    for _ in range(700):  # the two processes' requests interleaved
        passed += _passed(first, "1000/minute", who, 1) + _passed(second, "1000/minute", who, 1)
    assert 1000 <= passed <= 1000 + 2 * 10
