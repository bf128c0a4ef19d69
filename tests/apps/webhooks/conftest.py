"""A real HTTP receiver on loopback for the webhook tests, which can answer 2xx, fail, or hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spendtrackr.core.config import Settings
from tests.factories import Actor, signup


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    status: int = 204
    hang_seconds: float = 0.0
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} requests arrived, not {count}")
            time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            state.arrived.set()
            if state.hang_seconds:
                time.sleep(state.hang_seconds)
            self.send_response(state.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://localhost:{server.server_address[1]}/hooks/spendtrackr"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    """The worker's settings in tests: loopback receivers allowed, short timeouts."""
    return settings.model_copy(
        update={"webhook_allow_private": True, "webhook_timeout_seconds": 1.0}
    )


@pytest.fixture
def admin(client: TestClient) -> Iterator[Actor]:
    """A company's admin; its endpoints are deleted after the test."""
    actor = signup(client)
    yield actor
    for endpoint in client.get("/webhook-endpoints", headers=actor.headers).json()["items"]:
        client.delete(f"/webhook-endpoints/{endpoint['id']}", headers=actor.headers)


def factory(app: FastAPI) -> Any:
    return app.state.session_factory
