"""More concurrent requests than a process has threads and pooled connections: they wait their
turn for a request slot and are all served (or, past `REQUEST_QUEUE_TIMEOUT_SECONDS`, answered
503 `overloaded` with Retry-After), instead of the process standing still with every thread
blocked on the pool. Nor do slow receipt reads after uploads take the routes' threads."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx2 as httpx

from tests.factories import signup, submit_spend
from tests.fake_gemini import FakeGemini, fake_gemini
from tests.faults.harness import ApiProcess, wait_until
from tests.receipts import pdf_receipt

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


def test_receipts_read_after_their_uploads_leave_the_routes_threads_free(
    api_env: dict[str, str], logs: Path
) -> None:
    """The web process reads a receipt after answering its upload (`OCR_IN_PROCESS`). Two reads
    held up by Gemini, on a process with two route threads: other requests are still served.
    They ran on the routes' thread pool, so the two reads took both threads and every request
    waited for Gemini."""
    with fake_gemini() as fake:
        env = {
            **api_env,
            "THREADPOOL_SIZE": "2",
            "GEMINI_API_KEY": "test-key",
            "GEMINI_BASE_URL": fake.url,
            "GEMINI_TIMEOUT_SECONDS": "60",
        }
        held = threading.Event()
        answer = FakeGemini.answer({"total": "12.50", "currency": "USD", "vendor": "Cafe"})
        fake.replies.extend([replace(answer, hold=held) for _ in range(2)])
        api = ApiProcess(env, logs).start()
        try:
            client = httpx.Client(base_url=api.url, timeout=60)
            admin = signup(client)  # type: ignore[arg-type]
            receipts = []
            for _ in range(2):
                spend = submit_spend(client, admin)  # type: ignore[arg-type]
                uploaded = client.post(
                    "/receipts",
                    headers=admin.headers,
                    data={"spend_id": spend["id"]},
                    files={"file": ("r.pdf", pdf_receipt(), "application/pdf")},
                )
                assert uploaded.status_code == 201, uploaded.text
                receipts.append(uploaded.json()["id"])
            wait_until(lambda: len(fake.requests) == 2)  # both reads are waiting on Gemini
            with httpx.Client(base_url=api.url, timeout=10) as other:
                listed = other.get("/spends", headers=admin.headers)
            assert listed.status_code == 200
            assert listed.json()["total"] == 2
            held.set()  # and the two reads finish
            wait_until(
                lambda: all(
                    client.get(f"/receipts/{r}", headers=admin.headers).json()["ocr_status"]
                    == "done"
                    for r in receipts
                )
            )
        finally:
            held.set()
            api.stop()
