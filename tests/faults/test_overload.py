"""More concurrent requests than a process has threads and pooled connections: they wait their
turn for a request slot and are all served (or, past `REQUEST_QUEUE_TIMEOUT_SECONDS`, answered
503 `overloaded` with Retry-After), instead of the process standing still with every thread
blocked on the pool."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx

from tests.factories import signup, submit_spend
from tests.faults.harness import ApiProcess

BURST = 24


def _burst(url: str, headers: dict[str, str]) -> list[httpx.Response]:
    start = threading.Barrier(BURST)

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as http:
            start.wait()
            return http.get("/spends", headers=headers)

    with ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(one, range(BURST)))


def test_a_burst_beyond_the_threads_and_connections_is_served(
    api_env: dict[str, str], logs: Path
) -> None:
    """Two threads, two connections, 24 requests at once. Each request's transaction holds its
    connection from the user lookup (one thread) to the route (another): without slots, the
    requests beyond two blocked both threads on the empty pool while the two holding connections
    waited for a thread, until the pool's 1 s timeout answered 503 `database_unavailable`."""
    env = {**api_env, "THREADPOOL_SIZE": "2", "DB_POOL_OVERFLOW": "0"}
    api = ApiProcess({**env, "DB_POOL_TIMEOUT_SECONDS": "1"}, logs).start()
    try:
        client = httpx.Client(base_url=api.url, timeout=60)
        admin = signup(client)  # type: ignore[arg-type]
        submit_spend(client, admin)  # type: ignore[arg-type]
        responses = _burst(api.url, admin.headers)
        assert Counter(r.status_code for r in responses) == {200: BURST}, [
            r.text for r in responses if r.status_code != 200
        ]
        assert all(r.json()["total"] == 1 for r in responses)
    finally:
        api.stop()


def test_a_request_that_waits_too_long_for_a_slot_is_told_to_retry(
    api_env: dict[str, str], logs: Path
) -> None:
    env = {**api_env, "THREADPOOL_SIZE": "2", "REQUEST_QUEUE_TIMEOUT_SECONDS": "0.001"}
    api = ApiProcess(env, logs).start()
    try:
        client = httpx.Client(base_url=api.url, timeout=60)
        admin = signup(client)  # type: ignore[arg-type]
        responses = _burst(api.url, admin.headers)
        statuses = Counter(r.status_code for r in responses)
        assert set(statuses) == {200, 503}, statuses
        for response in responses:
            if response.status_code == 503:
                assert response.json()["code"] == "overloaded"
                assert response.headers["Retry-After"] == "1"
        assert client.get("/spends", headers=admin.headers).status_code == 200
    finally:
        api.stop()
