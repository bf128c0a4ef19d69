"""`spendtrackr serve --workers N`: a socket per worker spreads kept-alive connections over the
workers, which then even them out; a dead worker is replaced; SIGTERM stops them all; a server
that cannot start says so and exits 1; every serving process has frozen its startup heap. Real
processes on real ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest
from uvicorn.config import STARTUP_FAILURE

from spendtrackr.core.serving import Balancer
from tests.faults.harness import free_port, wait_until

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux only"
)
ROOT = Path(__file__).resolve().parents[2]


def serve(app: str, port: int, workers: int) -> subprocess.Popen[str]:
    code = (
        "from spendtrackr.core import serving; "
        f"serving.run({app!r}, host='127.0.0.1', port={port}, workers={workers}, "
        "log_level='warning')"
    )
    return subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def pid_of(url: str, client: httpx.Client | None = None) -> int:
    response = (client or httpx).get(url, timeout=5)
    return int(response.json()["pid"])


def raw_get(conn: socket.socket) -> tuple[int, bool]:
    """One HTTP/1.1 request on an open connection: the worker's pid, and whether it closes the
    connection (`Connection: close`) rather than keep it alive."""
    conn.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    response = b""
    while not response.endswith(b"}"):
        chunk = conn.recv(4096)
        assert chunk, "connection closed"
        response += chunk
    head, body = response.split(b"\r\n\r\n", 1)
    closing = b"\r\nconnection: close" in head.lower()
    return int(json.loads(body)["pid"]), closing


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(server: subprocess.Popen[str]) -> str:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    output, _ = server.communicate(timeout=60)
    return output


@contextmanager
def two_workers() -> Iterator[tuple[int, str, set[int]]]:
    """A server of pid_app with two workers: (port, url, the workers' pids) once both answer.
    Stopped with SIGTERM on the way out, which must end it with status 0."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = serve("tests.core.pid_app:app", port, workers=2)
    try:
        seen: set[int] = set()
        # Both workers are up once both have answered (a socket joins the group when it listens).
        wait_until(lambda: seen.add(pid_of(url)) or len(seen) == 2, timeout=90)
        yield port, url, seen
        assert server.poll() is None
    finally:
        output = stop(server)
    assert server.returncode == 0, output


def test_connections_opened_at_once_are_spread_over_the_workers_and_sigterm_stops_them() -> None:
    with two_workers() as (port, _, seen):
        # As a load balancer's pool or wrk does: 32 connections opened at once (the kernel
        # completes them into the accept queues before any worker accepts), then used.
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        try:
            first = [raw_get(conn)[0] for conn in connections]
        finally:
            for conn in connections:
                conn.close()
        spread = Counter(first)
        assert set(spread) == seen
        # A hash of 32 connections over two sockets: a worker with fewer than 4 of them is a
        # one-in-a-hundred-thousand draw. (uvicorn's one shared socket passes this too when its
        # workers happen to wake in turn; under the bench's load it left one worker with 23 of
        # 32 connections, and once at 88% of a core beside one at 6%: see core/serving.py.)
        assert min(spread.values()) >= 4, spread
    assert not any(alive(pid) for pid in seen)


def test_the_workers_even_out_the_connections_they_hold() -> None:
    """A hash leaves 32 connections at 16/16 about one time in seven. Used on, they end up
    16/16: a worker over its share answers some with `Connection: close`, and those clients
    reconnect (as wrk and every HTTP/1.1 client do). A connection kept alive stays put."""
    with two_workers() as (port, _, seen):
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        where = [0] * len(connections)
        closed = 0
        first: list[int] = []

        def balanced() -> bool:
            nonlocal closed
            for i, conn in enumerate(connections):
                pid, closing = raw_get(conn)
                assert where[i] in (0, pid), "a connection kept alive moved"
                if len(first) < len(connections):
                    first.append(pid)
                where[i] = pid
                if closing:
                    closed += 1
                    conn.close()
                    connections[i] = socket.create_connection(("127.0.0.1", port))
                    where[i] = 0
            spread = Counter(where)
            return 0 not in spread and sorted(spread.values()) == [16, 16]

        try:
            wait_until(balanced, timeout=20, interval=0.02)
            assert closed > 0 or sorted(Counter(first).values()) == [16, 16]
            # Once the workers have seen it even, no client is asked to reconnect.
            time.sleep(5 * Balancer.PERIOD)
            assert not any(raw_get(conn)[1] for conn in connections for _ in range(2))
        finally:
            for conn in connections:
                conn.close()
        assert set(where) == seen


def test_a_dead_worker_is_replaced() -> None:
    with two_workers() as (_, url, seen):
        victim = min(seen)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: (pid := pid_of(url)) not in seen and alive(pid), timeout=90)


def test_a_server_that_cannot_start_exits_1() -> None:
    # A module that is not there, and one whose package is not there either (uvicorn turns
    # only the first into its startup-failure exit code).
    for app in ("tests.core.no_such_module:app", "no_such_package.module:app"):
        broken = serve(app, free_port(), workers=2)
        assert broken.wait(timeout=120) == 1, stop(broken)
        assert "could not start" in stop(broken)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = serve("tests.core.pid_app:app", taken.getsockname()[1], workers=2)
        assert busy.wait(timeout=60) == 1
        assert "Address already in use" in stop(busy)


def test_every_serving_process_freezes_its_startup_heap() -> None:
    """Once serving, what was built to serve is out of the collector's full collections
    (`serving.freeze_heap`), in each worker and in a single-process server."""
    with two_workers() as (_, url, seen):
        answers = [httpx.get(url, timeout=5).json() for _ in range(20)]
        assert {a["pid"] for a in answers} <= seen
        assert all(a["frozen"] > 1000 for a in answers), answers

    port = free_port()
    single = serve("tests.core.pid_app:app", port, workers=1)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: pid_of(url) == single.pid, timeout=60)
        assert httpx.get(url, timeout=5).json()["frozen"] > 1000
    finally:
        output = stop(single)
    # uvicorn's server shuts down gracefully, then raises the signal it caught again.
    assert single.returncode == -signal.SIGTERM, output
    broken = serve("tests.core.no_such_module:app", free_port(), workers=1)
    assert broken.wait(timeout=60) == STARTUP_FAILURE, stop(broken)  # as `uvicorn.run` exits


@pytest.mark.parametrize(
    ("counts", "index", "excess"),
    [
        ([10, 6], 0, 2),  # share 8
        ([10, 6], 1, 0),
        ([9, 8], 0, 0),  # share 9: an odd total leaves one worker a connection ahead
        ([0, 0, 7], 2, 4),  # share 3
        ([1, 0], 0, 0),  # fewer connections than workers
    ],
)
def test_a_worker_sheds_what_it_holds_over_its_share(
    counts: list[int], index: int, excess: int
) -> None:
    balancer = Balancer(list(counts), index)
    balancer.measure(counts[index])
    assert [balancer.shed() for _ in range(excess + 2)] == [True] * excess + [False, False]
