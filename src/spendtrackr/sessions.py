"""The project's database sessions, and every hook they run as a transaction flushes, commits
or ends, registered here in the order they run.

The hooks keep invariants that no single write states: the daily spend totals follow the
spends, the audit entries join their company's hash chain, files stored by a transaction that
rolled back are removed, idempotency locks are released once the row they guard is visible.
They are registered on `AppSession` only, so every entry point (the API, the CLI, the worker,
the demo, the bench loader) gets all of them by taking its sessions from `session_factory`,
and a plain `Session(engine)` (a test or an operator editing rows by hand) gets none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.receipts import service as receipts
from spendtrackr.apps.spends import totals
from spendtrackr.core import idempotency
from spendtrackr.core.config import Settings
from spendtrackr.core.db import EMAIL_ENABLED, build_engine, build_session_factory


class AppSession(Session):
    """A Session that keeps the project's invariants (the hooks below)."""


# (event, hook), in the order each event runs them.
HOOKS: list[tuple[str, Callable[..., Any]]] = [
    # As spends are flushed, their changes to the daily totals are noted per transaction.
    ("after_flush", totals.note_changes),
    ("after_rollback", totals.drop_rolled_back),
    ("after_transaction_end", totals.fold_released_savepoint),
    # Before the commit: the totals first, then the audit append, which locks the company's
    # chain head, so that the head stays the last lock every transaction takes.
    ("before_commit", totals.write_before_commit),
    ("before_commit", audit.append_staged),
    ("after_transaction_end", audit.drop_staged),
    # Files a transaction stored stay if it commits and go if it does not.
    ("after_commit", receipts.keep_new_files),
    ("after_transaction_end", receipts.drop_new_files),
    ("after_transaction_end", idempotency.release_locks),
]

for _event, _hook in HOOKS:
    event.listen(AppSession, _event, _hook)


def session_factory(engine: Engine, settings: Settings | None = None) -> sessionmaker[Session]:
    """Sessions of this project, for every entry point. What the configuration decides for
    work done inside a transaction (whether a notification is also emailed) rides in
    `session.info`."""
    info = {EMAIL_ENABLED: bool(settings and settings.email_enabled)}
    return build_session_factory(engine, class_=AppSession, info=info)


@contextmanager
def open_sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the configured database for one command or script; its engine is closed
    when the block ends."""
    engine = build_engine(settings)
    try:
        yield session_factory(engine, settings)
    finally:
        engine.dispose()
