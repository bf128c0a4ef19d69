"""The bench's measurements beyond wrk scenarios: the webhook outbox relay, the audit chain's
appends a second for one company, cursor pages deep in a tenant, and the invariants of a tenant
after its bulk load."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text

import spendtrackr.models  # noqa: F401 - every table mapped, for the foreign keys
from spendtrackr.apps.audit import flows as audit_flows
from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.audit.models import AuditLog
from spendtrackr.apps.ledger.models import LedgerLine
from spendtrackr.apps.spends.models import Spend, SpendTotal
from spendtrackr.apps.users.models import User
from spendtrackr.apps.webhooks import flows as webhook_flows
from spendtrackr.apps.webhooks.models import DeliveryStatus, WebhookDelivery
from spendtrackr.core.config import Settings
from spendtrackr.core.db import session_scope
from spendtrackr.core.pagination import encode_cursor
from spendtrackr.sessions import open_sessions


def settings_for(env: dict[str, str]) -> Settings:
    names: dict[str, Any] = {
        k.lower(): v for k, v in env.items() if k.isupper() and k.lower() in Settings.model_fields
    }
    return Settings(_env_file=None, **names)


# --- a webhook receiver, in a process of its own -------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def serve_receiver(port: int) -> None:
    """`python -c "from bench.extras import serve_receiver; serve_receiver(PORT)"`: answers
    every POST with 204, as a customer's endpoint that keeps up would."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
    server.daemon_threads = True
    server.serve_forever()


def relay(env: dict[str, str], seconds: float = 30.0) -> dict[str, Any]:
    """The worker's webhook relay (`webhooks.flows.work_once`, as `spendtrackr worker` runs it)
    draining the outbox the load filled, for at most `seconds`: deliveries made a second."""
    settings = settings_for(env)
    with open_sessions(settings) as factory, webhook_flows.http_client(settings) as client:
        with session_scope(factory) as session:
            before = _deliveries(session, DeliveryStatus.succeeded)
        started = time.perf_counter()
        rounds = 0
        while time.perf_counter() - started < seconds:
            rounds += 1
            if not webhook_flows.work_once(factory, settings=settings, client=client):
                break
        elapsed = time.perf_counter() - started
        with session_scope(factory) as session:
            delivered = _deliveries(session, DeliveryStatus.succeeded) - before
            waiting = _deliveries(session, DeliveryStatus.pending)
    return {
        "delivered": delivered,
        "seconds": round(elapsed, 1),
        "events_per_s": round(delivered / elapsed, 1) if elapsed else None,
        "rounds": rounds,
        "still_pending": waiting,
        "batch": settings.webhook_batch,
    }


def _deliveries(session: Any, status: DeliveryStatus) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == status)
        )
        or 0
    )


# --- the audit chain: one company's appends a second ------------------------------------------


def chain_appends(
    env: dict[str, str], company_id: uuid.UUID, *, threads: int = 6, seconds: float = 8.0
) -> dict[str, Any]:
    """Transactions that only append one audit entry to one company's chain, from `threads`
    threads at once: every write of a company ends this way (its chain head locked, the entry
    linked, the commit), so this is the most writes a second one company's chain lets through,
    whatever else the writes do before."""
    settings = settings_for({**env, "THREADPOOL_SIZE": str(threads)})
    counts = [0] * threads
    stop = threading.Event()
    with open_sessions(settings) as factory:

        def work(i: int) -> None:
            while not stop.is_set():
                with session_scope(factory) as session:
                    audit.record(
                        session,
                        company_id=company_id,
                        actor_id=None,
                        action="bench.append",
                        entity_type="bench",
                        entity_id=str(i),
                    )
                counts[i] += 1

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        time.sleep(seconds)
        stop.set()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
    return {
        "threads": threads,
        "appends": sum(counts),
        "appends_per_s": round(sum(counts) / elapsed),
    }


# --- cursor pages ---------------------------------------------------------------------------


def cursor_paths(url: str, env: dict[str, str], admin_email: str) -> dict[str, str]:
    """`GET /spends` paths for the first, the middle and the last page of the tenant in cursor
    order (`updated_at`, `id`): each cursor is the one the API hands out at that point."""
    settings = settings_for({**env, "DATABASE_URL": url})
    with open_sessions(settings) as factory, session_scope(factory) as session:
        company_id = session.scalar(select(User.company_id).where(User.email == admin_email))
        total = session.scalar(
            select(func.count()).select_from(Spend).where(Spend.company_id == company_id)
        )
        assert total

        def cursor_at(offset: int) -> str:
            at, ident = session.execute(
                select(Spend.updated_at, Spend.id)
                .where(Spend.company_id == company_id)
                .order_by(Spend.updated_at, Spend.id)
                .offset(offset)
                .limit(1)
            ).one()
            return encode_cursor(at, ident)

        first = "/spends?limit=50&updated_since=2000-01-01T00:00:00Z"
        return {
            "first": first,
            "middle": f"/spends?limit=50&cursor={cursor_at(total // 2)}",
            "last": f"/spends?limit=50&cursor={cursor_at(max(0, total - 60))}",
        }


# --- after a bulk load ----------------------------------------------------------------------


def load_invariants(url: str, env: dict[str, str], admin_email: str) -> dict[str, Any]:
    """What a bulk-loaded tenant must hold: its audit chain verifies from the first entry to
    the last, every spend, decided step and journal matches the digest its entry recorded
    (`GET /audit-logs/verify?deep=true`), each spend's journal balances, and the daily totals
    equal the spends."""
    settings = settings_for({**env, "DATABASE_URL": url})
    started = time.perf_counter()
    with open_sessions(settings) as factory, session_scope(factory) as session:
        company_id = session.scalar(select(User.company_id).where(User.email == admin_email))
        assert company_id is not None
        chain = audit.verify_chain(session, company_id=company_id)
        deep = audit_flows.verify_deep(session, company_id=company_id)
        unbalanced = session.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT spend_id FROM ledger_line WHERE company_id = :c "
                "GROUP BY spend_id HAVING SUM(debit) <> SUM(credit)) AS u"
            ),
            {"c": company_id.hex},
        ).scalar()
        lines = session.scalar(
            select(func.count()).select_from(LedgerLine).where(LedgerLine.company_id == company_id)
        )
        spends = session.execute(
            select(func.count(), func.coalesce(func.sum(Spend.base_amount), 0)).where(
                Spend.company_id == company_id
            )
        ).one()
        totals = session.execute(
            select(
                func.coalesce(func.sum(SpendTotal.spend_count), 0),
                func.coalesce(func.sum(SpendTotal.base_total), 0),
            ).where(SpendTotal.company_id == company_id, SpendTotal.dimension == "category")
        ).one()
        entries = session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.company_id == company_id)
        )
    return {
        "audit_chain_valid": chain.valid,
        "rows_checked_against_their_digests": deep.checked,
        "digest_mismatches": len(deep.mismatches),
        "audit_entries": entries,
        "ledger_lines": lines,
        "unbalanced_journals": unbalanced,
        "spends": spends[0],
        "totals_match": int(totals[0]) == spends[0] and Decimal(totals[1]) == Decimal(spends[1]),
        "checked_in_s": round(time.perf_counter() - started, 1),
    }


@contextmanager
def timed() -> Any:
    box: dict[str, float] = {}
    started = time.perf_counter()
    yield box
    box["seconds"] = round(time.perf_counter() - started, 1)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
