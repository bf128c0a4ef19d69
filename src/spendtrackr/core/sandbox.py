"""Run an untrusted parse in a child process with a memory, CPU and wall-clock bound.

A receipt is a file from a user: a small PDF can inflate to gigabytes of content streams, a PNG
can declare billions of pixels. Parsing it in the web or worker process would let one file take
that process's memory and cores. Here it runs in a fresh child (forked from a clean forkserver,
never from a process with threads and locks held), under `RLIMIT_AS` and `RLIMIT_CPU`, and is
killed when its time is up; whatever happens there, the caller gets a result or `LimitExceeded`.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")

# Modules the forkserver imports once, so that each child starts with them loaded.
_PRELOAD = ["spendtrackr.apps.receipts.extractors", "pypdf", "PIL.Image"]


class LimitExceeded(Exception):
    """The work went past one of its bounds; asking again would end the same way."""


@dataclass(frozen=True, slots=True)
class Bounds:
    memory_bytes: int
    cpu_seconds: int
    wall_seconds: float


def _context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], bounds: Bounds) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (bounds.memory_bytes, bounds.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (bounds.cpu_seconds, bounds.cpu_seconds + 1))
    try:
        result: tuple[bool, Any] = (True, fn(*args))
    except MemoryError:
        result = (False, LimitExceeded(f"needed more than {bounds.memory_bytes >> 20} MiB"))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which decides
        result = (False, exc)
    try:
        conn.send(result)
    except MemoryError:
        conn.send((False, LimitExceeded(f"needed more than {bounds.memory_bytes >> 20} MiB")))
    finally:
        conn.close()


def run_bounded(fn: Callable[..., T], *args: Any, bounds: Bounds) -> T:
    """`fn(*args)` in a child process within `bounds`; its exceptions are raised here. `fn`
    and its arguments and result must be picklable (a module-level function, bytes, data)."""
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, fn, args, bounds), daemon=True)  # type: ignore[attr-defined]
    process.start()
    sender.close()
    try:
        if not receiver.poll(bounds.wall_seconds):
            raise LimitExceeded(f"took longer than {bounds.wall_seconds:g} s")
        try:
            ok, value = receiver.recv()
        except EOFError:
            process.join(5)
            if process.exitcode in (-signal.SIGXCPU, -signal.SIGKILL):
                raise LimitExceeded(f"used more than {bounds.cpu_seconds} s of CPU") from None
            raise LimitExceeded(f"the parser died (exit code {process.exitcode})") from None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(5)
    if ok:
        return value  # type: ignore[no-any-return]
    raise value
