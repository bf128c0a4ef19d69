"""Serving an ASGI app with uvicorn: one process, or a supervisor and N workers that each listen on
their own SO_REUSEPORT socket.

uvicorn's own `--workers N` binds one socket in the parent and shares it. Every worker accepts from
it, and whichever wakes first takes every connection pending at that moment (asyncio accepts up to
a backlog's worth per wake-up). Clients that keep their connections open (a load balancer's pool,
an app's HTTP/1.1 session, wrk) stay on the worker that accepted them, so the split is decided by
wake-up races and can leave one worker idle beside a busy one. With a socket per worker in one
SO_REUSEPORT group, Linux spreads connections over the workers by a hash of their addresses
(the measurements: docs/DESIGN.md and bench/README.md).

A hash spreads them evenly only on average: 16 connections fall 8/8 one time in five, and a
worker holding 10 of them answers each of its requests a quarter slower than an even split would,
which is where the tail of the latencies comes from. So the workers also balance what they hold:
each publishes its count of open connections in memory shared with the others, and one that holds
more than its share (the total over the workers, rounded up) asks that many clients to reconnect
by answering their next request with `Connection: close`. A reconnecting client lands on a worker
by the hash again; a worker over its share keeps asking until none is.

With one worker, one uvicorn server in this process. Elsewhere than Linux (macOS has SO_REUSEPORT
without the spreading), or with `--reload`, plain `uvicorn.run`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import multiprocessing
import signal
import socket
import sys
import time
from collections.abc import MutableSequence
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE

logger = logging.getLogger("spendtrackr.serving")

STOP_TIMEOUT_SECONDS = 30.0
BACKLOG = 2048


def run(
    app: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    **options: Any,
) -> None:
    """Serve `app` (an import string) on host:port; `options` are uvicorn.Config's."""
    if options.get("reload") or (workers > 1 and not sys.platform.startswith("linux")):
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    if workers <= 1:
        server = _Server(uvicorn.Config(app, host=host, port=port, **options))
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    Supervisor(app, host=host, port=port, workers=workers, options=options).run()


def _bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to host:port (SO_REUSEADDR: a connection in TIME_WAIT owns no port)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket in the SO_REUSEPORT group of host:port."""
    sock = _bound_socket(host, port, reuse_port=True)
    try:
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _check_port_free(host: str, port: int) -> None:
    """Fail (OSError: address in use) if anything listens on host:port, as a single uvicorn would:
    a socket of another SO_REUSEPORT group of this user (a second server started by mistake)
    would otherwise be joined silently and share the traffic. Checked here, in the command,
    rather than in a worker that the supervisor would then see die."""
    _bound_socket(host, port, reuse_port=False).close()


class Balancer:
    """One worker's part in keeping the workers' connections even (see the module's text).

    `counts` is shared by the workers, one slot each; `index` is this worker's. Every `PERIOD`
    the worker writes its count of open connections there and works out how many it holds over
    its share; that many of its next responses close their connections."""

    PERIOD = 0.1

    def __init__(self, counts: MutableSequence[int], index: int) -> None:
        self.counts, self.index = counts, index
        self.excess = 0

    def measure(self, connections: int) -> None:
        self.counts[self.index] = connections
        share = math.ceil(sum(self.counts) / len(self.counts))
        self.excess = max(0, connections - share)

    async def run(self, connections: set[Any]) -> None:
        while True:
            self.measure(len(connections))
            await asyncio.sleep(self.PERIOD)

    def shed(self) -> bool:
        """Whether the response being started should close its connection."""
        if self.excess <= 0:
            return False
        self.excess -= 1
        return True

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """`app`, whose HTTP responses say `Connection: close` while this worker sheds."""

        async def balanced(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not self.shed():
                await app(scope, receive, send)
                return

            async def closing(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = [*message.get("headers", ()), (b"connection", b"close")]
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, closing)

        return balanced


class _Server(uvicorn.Server):
    """uvicorn's server: once it has started serving, the heap built so far is frozen out of the
    garbage collector's sight and the supervisor (if any) is told. A worker beside others
    balances its connections with them (`Balancer`)."""

    def __init__(
        self,
        config: uvicorn.Config,
        ready: EventType | None = None,
        balancer: Balancer | None = None,
    ) -> None:
        super().__init__(config)
        self.ready = ready
        self.balancer = balancer
        self._balancing: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self.balancer is not None:
            # Before the sockets listen: each connection's protocol takes the app as it is then.
            self.config.loaded_app = self.balancer.wrap(self.config.loaded_app)
        await super().startup(sockets)
        if self.started:
            if self.balancer is not None:
                connections = self.server_state.connections
                self._balancing = asyncio.create_task(self.balancer.run(connections))
            freeze_heap()
            if self.ready is not None:
                self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._balancing is not None:
            self._balancing.cancel()
        await super().shutdown(sockets)


def freeze_heap() -> None:
    """Keep what the process built to serve (modules, the app, its routes and schemas: some
    290,000 objects) out of the cyclic garbage collector's full collections.

    A full collection walks every tracked object, and in a worker it stops every request of the
    process while it runs: 168 ms on the bench machine, several times a bench run (docs/DESIGN.md,
    "The startup heap is frozen out of the garbage collector"). What is frozen lives as long as
    the process anyway; what requests allocate is still collected.
    """
    gc.collect()
    gc.freeze()


def _worker(
    app: str,
    host: str,
    port: int,
    options: dict[str, Any],
    ready: EventType,
    balancer: Balancer,
) -> None:
    """One worker process: its own socket, one uvicorn server (which handles SIGTERM/SIGINT as a
    graceful shutdown)."""
    try:
        sock = reuse_port_socket(host, port)
    except OSError as error:
        logger.error("cannot listen on %s:%s: %s", host, port, error.strerror or error)
        sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config(app, host=host, port=port, **options)
    _Server(config, ready, balancer).run(sockets=[sock])


class Supervisor:
    """Starts the workers, replaces one that dies, and stops them all on SIGTERM or SIGINT."""

    def __init__(
        self,
        app: str,
        *,
        host: str,
        port: int,
        workers: int,
        options: dict[str, Any],
    ) -> None:
        self.target = (app, host, port, options)
        self.workers = workers
        # spawn, not fork: a worker starts from a clean interpreter, as uvicorn's do.
        self.context = multiprocessing.get_context("spawn")
        # Each worker's count of open connections (`Balancer`): shared memory without a lock, as
        # each worker writes only its own slot.
        self.connections = self.context.Array("i", workers, lock=False)
        self.processes: list[tuple[BaseProcess, EventType]] = []
        self.stopping = False
        self.failed = False

    def run(self) -> None:
        host, port = self.target[1], self.target[2]
        try:
            _check_port_free(host, port)
        except OSError as error:  # what a single uvicorn says, and its exit status
            logger.error("cannot listen on %s:%s: %s", host, port, error.strerror or error)
            raise SystemExit(1) from None
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.processes = [self._start(index) for index in range(self.workers)]
            logger.info("serving on %s:%s with %d workers (SO_REUSEPORT)", host, port, self.workers)
            while not self.stopping:
                time.sleep(0.5)
                self._replace_dead()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.failed:
            raise SystemExit(1)

    def _start(self, index: int) -> tuple[BaseProcess, EventType]:
        ready = self.context.Event()
        self.connections[index] = 0  # a dead worker's connections died with it
        balancer = Balancer(self.connections, index)
        process = self.context.Process(
            target=_worker, args=(*self.target, ready, balancer), daemon=False
        )
        process.start()
        return process, ready

    def _replace_dead(self) -> None:
        for index, (process, ready) in enumerate(self.processes):
            if process.is_alive() or self.stopping:
                continue
            if not ready.is_set():
                # It died before serving: the app does not import or start, or the port cannot be
                # bound. Its replacement would fail the same way: stop instead of looping.
                logger.error(
                    "worker %s could not start (exit code %s): stopping",
                    process.pid,
                    process.exitcode,
                )
                self.failed = self.stopping = True
                return
            logger.error(
                "worker %s died (exit code %s): replacing it", process.pid, process.exitcode
            )
            self.processes[index] = self._start(index)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _stop_all(self) -> None:
        for process, _ in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process, _ in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
