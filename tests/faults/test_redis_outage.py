"""Redis killed under load: the API keeps answering, idempotency falls back to the database,
rate limits fail open with a warning, /readyz says degraded; Redis back: normal again, no
restart of the API."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import httpx2 as httpx

from tests.factories import signup
from tests.faults.harness import ApiProcess, RedisProcess, wait_until


def test_redis_killed_during_load_and_restarted(api_env: dict[str, str], logs: Path) -> None:
    redis = RedisProcess().start()
    api = ApiProcess(
        {**api_env, "REDIS_URL": redis.url, "REDIS_TIMEOUT_SECONDS": "0.2"}, logs
    ).start()
    try:
        client = httpx.Client(base_url=api.url, timeout=30)
        admin = signup(client)  # type: ignore[arg-type]
        assert client.get("/readyz").json()["checks"]["redis"] == "ok"
        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=api.url, timeout=30) as http:
                while not stop.is_set():
                    response = http.post(
                        "/spends",
                        json={"amount": "3.50", "currency": "USD", "spend_date": "2026-11-01"},
                        headers={**admin.headers, "Idempotency-Key": str(uuid.uuid4())},
                    )
                    statuses.append(response.status_code)

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        wait_until(lambda: len(statuses) > 20)
        redis.kill()
        before = len(statuses)
        wait_until(lambda: len(statuses) > before + 40)

        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "degraded",
            "checks": {"database": "ok", "redis": "unavailable"},
        }
        # idempotency still holds, on the database alone
        body = {"amount": "9.99", "currency": "USD", "spend_date": "2026-11-01"}
        key = {**admin.headers, "Idempotency-Key": "during-outage"}
        first, again = (
            client.post("/spends", json=body, headers=key),
            client.post("/spends", json=body, headers=key),
        )
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"

        redis = RedisProcess.__new__(RedisProcess)
        redis.port, redis.proc = int(api.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]), None
        redis.start()  # the same port again
        wait_until(lambda: client.get("/readyz").json()["checks"]["redis"] == "ok", timeout=30)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        assert statuses
        assert set(statuses) == {201}, sorted(set(statuses))
        log = logs.read_text()
        assert "redis unavailable" in log or "rate limit storage unavailable" in log
        assert "Traceback" not in log
    finally:
        api.stop()
        if redis.proc:
            redis.kill()
