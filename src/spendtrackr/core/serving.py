"""Serving an ASGI app with uvicorn: one process, or a supervisor and N workers that each listen on
their own SO_REUSEPORT socket.

uvicorn's own `--workers N` binds one socket in the parent and shares it. Every worker accepts from
it, and whichever wakes first takes every connection pending at that moment (asyncio accepts up to
a backlog's worth per wake-up). Clients that keep their connections open (a load balancer's pool,
an app's HTTP/1.1 session, wrk) stay on the worker that accepted them, so the split is decided by
wake-up races and can leave one worker idle beside a busy one. With a socket per worker in one
SO_REUSEPORT group, Linux spreads connections over the workers by a hash of their addresses
(the measurements: docs/DESIGN.md and bench/README.md).

With one worker, one uvicorn server in this process. Elsewhere than Linux (macOS has SO_REUSEPORT
without the spreading), or with `--reload`, plain `uvicorn.run`.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from types import FrameType
from typing import Any

import uvicorn
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


class _Server(uvicorn.Server):
    """uvicorn's server: once it has started serving, the heap built so far is frozen out of the
    garbage collector's sight and the supervisor (if any) is told."""

    def __init__(self, config: uvicorn.Config, ready: EventType | None = None) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            freeze_heap()
            if self.ready is not None:
                self.ready.set()


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


def _worker(app: str, host: str, port: int, options: dict[str, Any], ready: EventType) -> None:
    """One worker process: its own socket, one uvicorn server (which handles SIGTERM/SIGINT as a
    graceful shutdown)."""
    try:
        sock = reuse_port_socket(host, port)
    except OSError as error:
        logger.error("cannot listen on %s:%s: %s", host, port, error.strerror or error)
        sys.exit(STARTUP_FAILURE)
    _Server(uvicorn.Config(app, host=host, port=port, **options), ready).run(sockets=[sock])


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
            self.processes = [self._start() for _ in range(self.workers)]
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

    def _start(self) -> tuple[BaseProcess, EventType]:
        ready = self.context.Event()
        process = self.context.Process(target=_worker, args=(*self.target, ready), daemon=False)
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
            self.processes[index] = self._start()

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
