"""The `spendtrackr` command: serve, migrate, create-superuser, worker, demo, rebuild-totals,
audit anchor / audit verify."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy.orm import Session

# Every mapped class, as the API has them: a command that flushes a spend (the worker, after a
# receipt is read) needs the tables its foreign keys point at (card) mapped too, or SQLAlchemy
# cannot order the flush and every read failed.
import spendtrackr.models  # noqa: F401
from spendtrackr.apps.approvals import nudges as approval_nudges
from spendtrackr.apps.audit import flows as audit_flows
from spendtrackr.apps.audit import service as audit_service
from spendtrackr.apps.auth import flows
from spendtrackr.apps.auth.schemas import SignupRequest
from spendtrackr.apps.cards import lifecycle as card_lifecycle
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.ledger import flows as ledger_flows
from spendtrackr.apps.notifications import flows as notification_flows
from spendtrackr.apps.receipts import flows as receipt_flows
from spendtrackr.apps.receipts.extractors import build_extractor
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.webhooks import flows as webhook_flows
from spendtrackr.core import metrics, serving
from spendtrackr.core.config import get_settings
from spendtrackr.core.db import session_scope, utcnow
from spendtrackr.core.logging import configure_logging
from spendtrackr.core.security import Passwords
from spendtrackr.core.storage import LocalStorage
from spendtrackr.sessions import open_sessions

app = typer.Typer(help="SpendTrackr: self-hosted spend management.", no_args_is_help=True)
audit_app = typer.Typer(
    help="Check the tamper-evident audit log, and anchor it outside the database.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")
rates_app = typer.Typer(help="Exchange rates: import the reference rates an operator downloads.")
app.add_typer(rates_app, name="rates")

REPO_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str | None = None) -> Config:
    ini = Path(os.environ.get("ALEMBIC_CONFIG", REPO_ROOT / "alembic.ini"))
    config = Config(str(ini))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Serve the API with uvicorn."""
    # glibc gives each thread of the pool its own malloc arena; with dozens of threads the
    # workers' memory fragments and grows run after run. Two arenas keep it flat. A fixed mmap
    # threshold gives big blocks (Argon2's 19 MiB per hash) back to the system when freed;
    # glibc's adaptive threshold would otherwise keep them in the heap for good. The spawned
    # workers inherit both; the bench measures the result.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(1 << 20))
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several processes: /metrics must add up every worker's samples.
        metrics_dir = Path(tempfile.gettempdir()) / f"spendtrackr-metrics-{os.getpid()}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)  # the supervisor's own
    if settings.metrics_port is not None:
        metrics.serve_separately(settings.metrics_host, settings.metrics_port)
    options: dict[str, Any] = {
        "factory": True,
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
    }
    if reload:
        uvicorn.run("spendtrackr.main:create_app", host=host, port=port, reload=True, **options)
        return
    # Several workers: each on its own SO_REUSEPORT socket, so that kept-alive connections are
    # spread over them (core/serving.py says why uvicorn's shared socket is not).
    serving.run("spendtrackr.main:create_app", host=host, port=port, workers=workers, **options)


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply database migrations (alembic upgrade)."""
    command.upgrade(alembic_config(), revision)
    typer.echo(f"database at {revision}")


@app.command("create-superuser")
def create_superuser(
    email: Annotated[str, typer.Option(prompt=True, help="The admin's email")],
    company: Annotated[str, typer.Option(prompt="Company name", help="The company to create")],
    full_name: Annotated[str, typer.Option(prompt="Full name", help="The admin's name")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SPENDTRACKR_ADMIN_PASSWORD",
            help="At least 12 characters (prompted when not given)",
        ),
    ],
    base_currency: Annotated[str, typer.Option(help="ISO 4217 code")] = "USD",
    starter_workspace: Annotated[
        bool,
        typer.Option(help="Start with categories (with GL codes) and an inactive example policy"),
    ] = True,
) -> None:
    """Create a company and its admin. Running it again with the same email changes nothing."""
    try:
        body = SignupRequest(
            company_name=company,
            email=email,
            password=password,
            full_name=full_name,
            base_currency=base_currency,
            starter_workspace=starter_workspace,
        )
    except ValidationError as exc:
        for err in exc.errors():
            typer.echo(f"error: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
    settings = get_settings()
    with open_sessions(settings) as factory, session_scope(factory) as session:
        if users_service.accounts_for_email(session, body.email):
            typer.echo(f"{body.email} already exists; nothing changed")
            return
        company_row, user = flows.create_company_with_admin(
            session,
            Passwords(settings),
            company_name=body.company_name,
            base_currency=body.base_currency,
            email=body.email,
            full_name=body.full_name,
            password=body.password,
            starter_workspace=body.starter_workspace,
        )
        typer.echo(f"created company {company_row.name} ({company_row.id}) with admin {user.email}")


QUEUES = ("ocr", "webhooks", "exports", "holds", "reminders", "emails", "sweep")


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Run the due jobs once and exit")] = False,
    batch: Annotated[int, typer.Option(min=1, max=100, help="Jobs claimed at a time")] = 10,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between polls when idle")] = 2.0,
    queues: Annotated[
        str,
        typer.Option(
            help="Comma-separated queues this worker runs (default: all): "
            + ", ".join(QUEUES)
            + ". Run a pool of workers per queue to scale one kind of work on its own."
        ),
    ] = ",".join(QUEUES),
) -> None:
    """Run the background work: receipt OCR jobs (`ocr`), webhook deliveries (`webhooks`),
    export files (`exports`), card holds past CARD_HOLD_DAYS (`holds`), approval reminders and
    escalations and missing-receipt reminders (`reminders`), digests and emails when SMTP_HOST
    is set (`emails`), and stored files that nothing refers to, after
    STORAGE_ORPHAN_GRACE_SECONDS (`sweep`). Several workers can share any queue (rows are
    claimed with FOR UPDATE SKIP LOCKED); OCR jobs stuck in `processing` are taken over after
    OCR_STALE_SECONDS, webhook deliveries after WEBHOOK_LEASE_SECONDS, exports after 15
    minutes."""
    chosen = {q.strip() for q in queues.split(",") if q.strip()}
    unknown = sorted(chosen - set(QUEUES))
    if unknown or not chosen:
        raise typer.BadParameter(
            f"unknown queues: {', '.join(unknown) or '(none given)'}; known: {', '.join(QUEUES)}",
            param_hint="--queues",
        )
    settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    storage = LocalStorage(settings.storage_path)
    extractor = build_extractor(settings)
    typer.echo(
        f"worker started on {', '.join(q for q in QUEUES if q in chosen)} "
        f"with the {extractor.name} extractor"
    )
    last_sweep = 0.0
    with open_sessions(settings) as factory, webhook_flows.http_client(settings) as client:
        jobs: dict[str, list[Callable[[], int]]] = {
            "ocr": [
                lambda: receipt_flows.work_once(
                    factory, storage=storage, extractor=extractor, settings=settings, batch=batch
                )
            ],
            "webhooks": [
                lambda: webhook_flows.work_once(factory, settings=settings, client=client)
            ],
            "exports": [lambda: ledger_flows.run_export(factory, storage=storage)],
            "holds": [lambda: card_lifecycle.expire_holds(factory)],
            "reminders": [
                lambda: receipt_flows.remind_missing_receipts(factory, settings=settings),
                lambda: approval_nudges.nudge_due(factory),
            ],
            "emails": [
                lambda: notification_flows.send_digests(factory, settings=settings),
                lambda: notification_flows.send_emails(factory, settings=settings),
            ],
        }
        runs = [job for queue in QUEUES if queue in chosen for job in jobs.get(queue, [])]
        try:
            while True:
                ran = sum(job() for job in runs)
                if "sweep" in chosen and time.monotonic() - last_sweep > 600:
                    last_sweep = time.monotonic()
                    grace = settings.storage_orphan_grace_seconds
                    receipt_flows.sweep_orphan_files(factory, storage=storage, grace_seconds=grace)
                    ledger_flows.sweep_export_files(factory, storage=storage, grace_seconds=grace)
                if once and ran == 0:
                    break
                if ran == 0:
                    time.sleep(poll)
        except KeyboardInterrupt:
            typer.echo("worker stopped")


@app.command()
def demo(
    spends: Annotated[int, typer.Option(min=1, max=20_000, help="How many spends")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
) -> None:
    """A demo company (every role, teams, policies, cards, spends, receipts) built through the same
    flows as the API. Running it again changes nothing and prints the logins. (A tenant of
    hundreds of thousands of spends, for the benchmark: `python -m bench.loader`.)"""
    # Imported here, not at the top: uvicorn's spawned workers import this module, and the demo's
    # PDF and console libraries would only weigh on every worker's memory.
    from rich.console import Console

    from spendtrackr import demo as demo_data

    settings = get_settings()
    console = Console()
    with open_sessions(settings) as factory:
        tenant = demo_data.build_demo(factory, settings, spends=spends, seed=seed, console=console)
        demo_data.print_tenant(console, tenant, factory)


@app.command("rebuild-totals")
def rebuild_totals(
    company: Annotated[
        str | None, typer.Option(help="Only this company's id (default: every company)")
    ] = None,
) -> None:
    """Recompute the daily spend totals the spend summary reads from the spends themselves: after
    spends were written outside the application (a restore, a hand-made fix). Run it while the
    companies concerned are not changing spends."""
    from spendtrackr.apps.spends import totals

    company_id = _company_option(company)
    with open_sessions(get_settings()) as factory, session_scope(factory) as session:
        written = totals.rebuild(session, company_id=company_id)
    typer.echo(f"rebuilt {written} total rows")


def _company_option(company: str | None) -> uuid.UUID | None:
    try:
        return None if company is None else uuid.UUID(company)
    except ValueError:
        raise typer.BadParameter("not a company id (a UUID)", param_hint="--company") from None


CompanyOption = Annotated[
    str | None, typer.Option(help="Only this company's id (default: every company)")
]


@audit_app.command("anchor")
def audit_anchor(
    company: CompanyOption = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Append the anchors to this file (default: print them)"),
    ] = None,
) -> None:
    """Print each company's chain head (seq and hash) as one JSON line. Keep the lines somewhere
    the database's administrators cannot rewrite (a write-once bucket, a ticket, a signed email):
    `audit verify --anchor FILE` later proves the log up to each anchor is unchanged, even by
    someone who rewrote the whole log and its head."""
    company_id = _company_option(company)
    with open_sessions(get_settings()) as factory, session_scope(factory) as session:
        heads = audit_service.anchors(session, company_id=company_id)
        names = companies_service.names(session, ids=[h.company_id for h in heads])
    taken_at = utcnow().isoformat()
    lines = [
        json.dumps(
            {
                "company_id": str(h.company_id),
                "company": names.get(h.company_id, ""),
                "seq": h.seq,
                "hash": h.hash,
                "taken_at": taken_at,
            },
            ensure_ascii=False,
        )
        for h in heads
    ]
    if output is None:
        for line in lines:
            typer.echo(line)
    else:
        with output.open("a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
        typer.echo(f"appended {len(lines)} anchors to {output}")


def _read_anchors(path: Path) -> list[audit_service.Anchor]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            found.append(
                audit_service.Anchor(uuid.UUID(item["company_id"]), int(item["seq"]), item["hash"])
            )
        except (ValueError, KeyError, TypeError):
            raise typer.BadParameter(
                f"line {number} is not an anchor written by `audit anchor`", param_hint="--anchor"
            ) from None
    return found


@audit_app.command("baseline")
def audit_baseline(company: CompanyOption = None) -> None:
    """Record the current digest of every spend, decided approval step and journal that no audit
    entry records yet (after upgrading from a release whose entries carried no digests), so that
    `audit verify --deep` checks them from now on. Rows that have a digest are never touched."""
    company_id = _company_option(company)
    with open_sessions(get_settings()) as factory:
        with session_scope(factory) as session:
            ids = [h.company_id for h in audit_service.anchors(session, company_id=company_id)]
        for cid in ids:
            with session_scope(factory) as session:
                recorded = audit_flows.baseline(session, company_id=cid)
            typer.echo(f"{cid}: {recorded} rows given a baseline")


def _problems(
    session: Session, company_id: uuid.UUID, *, deep: bool, anchored: list[audit_service.Anchor]
) -> tuple[int, list[str]]:
    """How many entries a company's chain holds, and what does not match in it."""
    problems = []
    chain = audit_service.verify_chain(session, company_id=company_id)
    if not chain.valid:
        problems.append(
            f"chain broken at {chain.first_invalid_id or 'entries removed from the end'}"
        )
    if deep:
        found = audit_flows.verify_deep(session, company_id=company_id)
        problems += [f"{m.entity_type} {m.entity_id}: {m.reason}" for m in found.mismatches]
    problems += [
        f"anchor at seq {a.seq} does not match"
        for a in anchored
        if a.company_id == company_id and not audit_service.anchor_holds(session, a)
    ]
    return chain.checked, problems


@audit_app.command("verify")
def audit_verify(
    company: CompanyOption = None,
    deep: Annotated[
        bool, typer.Option(help="Also compare spends, approvals and ledger with the log")
    ] = False,
    anchor: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Anchors from `audit anchor` to check"),
    ] = None,
) -> None:
    """Recompute every company's hash chain (and with --deep, the money rows' digests; with
    --anchor, the anchored hashes). Exits 1 when anything does not match."""
    company_id = _company_option(company)
    anchored = _read_anchors(anchor) if anchor else []
    failed = False
    with open_sessions(get_settings()) as factory, session_scope(factory) as session:
        ids = [h.company_id for h in audit_service.anchors(session, company_id=company_id)]
        names = companies_service.names(session, ids=ids)
        for cid in ids:
            checked, problems = _problems(session, cid, deep=deep, anchored=anchored)
            label = f"{cid} {names.get(cid, '')}".rstrip()
            if not problems:
                typer.echo(f"ok   {label}: {checked} entries")
                continue
            failed = True
            typer.echo(f"FAIL {label}")
            for problem in problems:
                typer.echo(f"  {problem}")
    gone = {a.company_id for a in anchored} - set(ids)
    if company_id is None and gone:
        failed = True
        for cid in sorted(gone):
            typer.echo(f"FAIL {cid}: anchored, but its log is gone")
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()


@rates_app.command("import")
def import_rates(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The CSV to read")],
    base: Annotated[
        str, typer.Option(help="For a date,currency,rate file: the currency its rates are of")
    ] = "EUR",
) -> None:
    """Import reference rates for every company: the ECB's `eurofxref-hist.csv` (or the daily
    `eurofxref.csv`), unzipped from
    https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip, or a `date,currency,rate` CSV
    (units of each currency per one `--base`). Rates of the same pairs and days are replaced;
    nothing is read from the network."""
    from spendtrackr.apps.rates import parsing
    from spendtrackr.apps.rates import service as rates_service

    settings = get_settings()
    with file.open(newline="", encoding="utf-8-sig") as handle:
        try:
            rates = list(parsing.parse(handle, base=base.upper()))
        except parsing.RateFileError as exc:
            typer.echo(f"error: {file}: {exc}", err=True)
            raise typer.Exit(2) from None
    first = file.read_text(encoding="utf-8-sig", errors="replace")[:20].lower()
    ecb = not first.replace(" ", "").startswith("date,currency,rate")
    with open_sessions(settings) as factory, session_scope(factory) as session:
        count = rates_service.import_rates(session, rates, source="ecb" if ecb else "csv")
    days = len({r.rate_date for r in rates})
    typer.echo(f"imported {count} rates over {days} days from {file}")
