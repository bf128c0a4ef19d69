"""`make bench`: load scenarios against the API run as in production, each reported as a ratio to
the floor app measured in the same run. See bench/README.md."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import timeit
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pymysql  # type: ignore[import-untyped]
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bench import ceiling, extras, targets

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "lua"
RESULTS = ROOT / "bench" / "results"
console = Console()


@dataclass
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    requests: int
    connections: int
    ratio_to_floor: float | None = None
    # The hot card's approvals within the measured run (None for the other scenarios).
    approvals: int | None = None
    # CPU time a request (user + system, ms) of the serving processes and of MariaDB, over the
    # measured run: steadier than requests/s on a machine that drifts, and what the ratio is made of.
    app_cpu_ms: float | None = None
    db_cpu_ms: float | None = None
    note: str = ""


@dataclass
class Run:
    started_at: str
    machine: dict[str, Any]
    options: dict[str, Any]
    rounds: list[list[Result]] = field(default_factory=list)
    rss_mb: list[dict[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


# --- processes --------------------------------------------------------------------------------


def sh(*args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def ensure_tools() -> None:
    if shutil.which("wrk") is None:
        console.print("installing wrk (Debian package)")
        sh("apt-get", "install", "-y", "-qq", "wrk")
    if subprocess.run(
        ["mariadb-admin", "-uroot", "-h127.0.0.1", "ping"], capture_output=True, check=False
    ).returncode:
        sh(
            "start-stop-daemon",
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        )
        time.sleep(3)
    if subprocess.run(["redis-cli", "ping"], capture_output=True, check=False).returncode:
        sh(
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        )


# The servers run from the environment the bench runs in (`make bench` is `uv run`), whether or
# not `uv` itself is on PATH.
SPENDTRACKR = (sys.executable, "-m", "spendtrackr.cli")


def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PROMETHEUS_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ENVIRONMENT="production",
        JWT_SECRET="bench-secret-" + "x" * 40,
        LOG_LEVEL="INFO",
        LOG_JSON="true",
        ACCESS_TOKEN_MINUTES="240",
        RATE_LIMIT_API_USER="100000000/minute",
        RATE_LIMIT_LOGIN_IP="100000000/minute",
        RATE_LIMIT_LOGIN_EMAIL="100000000/minute",
        STORAGE_PATH=str(ROOT / "bench" / "results" / "tmp" / "receipts"),
        OCR_IN_PROCESS="false",
        # The outbox relay's scenario delivers to a receiver on loopback.
        WEBHOOK_ALLOW_PRIVATE="true",
        WEBHOOK_SECRET_KEY="bench-webhook-key-" + "w" * 32,
    )
    return env


class Server:
    def __init__(self, name: str, args: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        log = (RESULTS / "tmp" / f"{name}.log").open("w")
        self.proc = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if (
                    httpx.get(
                        f"http://127.0.0.1:{port}/healthz"
                        if name != "floor"
                        else f"http://127.0.0.1:{port}/docs",
                        timeout=1,
                    ).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"{name} did not start; see bench/results/tmp/{name}.log")

    def _descendants(self) -> list[str]:
        descendants, frontier = [], [str(self.proc.pid)]
        while frontier:
            children = sh("pgrep", "-P", frontier.pop(), check=False).split()
            descendants.extend(children)
            frontier.extend(children)
        return descendants

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its workers."""
        return sum(cpu_seconds(pid) for pid in [str(self.proc.pid), *self._descendants()])

    def worker_rss_mb(self) -> list[float]:
        """RSS of the uvicorn worker processes (the spawned children), in MB."""
        descendants = self._descendants()
        rss = []
        for pid in descendants:
            proc = Path(f"/proc/{pid}")
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                status = (proc / "status").read_text()
            except OSError:
                continue
            if "multiprocessing" in cmdline or len(descendants) <= 2:
                kib = next(
                    int(line.split()[1])
                    for line in status.splitlines()
                    if line.startswith("VmRSS:")
                )
                rss.append(kib / 1024)
        return rss

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def cpu_seconds(pid: str) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_pid() -> str | None:
    """The local MariaDB (or MySQL) server's pid, for its CPU time; None if it is elsewhere."""
    for name in ("mariadbd", "mysqld"):
        pids = sh("pgrep", "-x", name, check=False).split()
        if pids:
            return pids[0]
    return None


# --- wrk ----------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(
    name: str,
    url: str,
    script: str,
    env: dict[str, str],
    *,
    connections: int,
    seconds: int,
    threads: int,
) -> Result:
    out = sh(
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA / script),
        url,
        # BENCH_RUN: each wrk run's own, in the keys it makes, so that a run never repeats the
        # Idempotency-Key or authorization id of the one before it (a warm-up) in the same second.
        env={**os.environ, **env, "BENCH_LUA": str(LUA), "BENCH_RUN": uuid.uuid4().hex[:12]},
    )
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M))
    if "99" not in pct:
        raise RuntimeError(f"wrk gave no latency distribution for {name}:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    note = f"socket errors {errors.group(0)}" if errors else ""
    return Result(
        name=name,
        requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(pct["50"]),
        p90_ms=_ms(pct["90"]),
        p99_ms=_ms(pct["99"]),
        non_2xx=int(non2xx.group(1))
        if non2xx
        else 0 + (sum(int(g) for g in errors.groups()) if errors else 0),
        requests=total,
        connections=connections,
        note=note,
    )


# --- data ---------------------------------------------------------------------------------------


def fresh_database(server_url: str, name: str, *, keep: bool) -> tuple[str, bool]:
    """The URL of database `name`, migrated to head (a kept one gets the migrations added since
    it was built); (url, True) when it was just created."""
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(make_url(server_url).set(database=""))
    with engine.begin() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"), {"n": name}
        ).first()
        created = not (exists and keep)
        if created:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    engine.dispose()
    sh(sys.executable, "-m", "spendtrackr.cli", "migrate", env={**os.environ, "DATABASE_URL": url})
    return url, created


def drop_databases(server_url: str, names: list[str]) -> None:
    if not names:
        return
    engine = create_engine(make_url(server_url).set(database=""))
    with engine.begin() as conn:
        for name in names:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    engine.dispose()


def size_database(server_url: str, megabytes: int) -> int:
    """Grow the InnoDB buffer pool and the connection limit (dynamic settings, until the server
    restarts): MariaDB's default pool of 128 MB is a laptop's, smaller than the 1M tenant's
    indexes, and no production database runs with it. Returns the pool size in use, in MB."""
    engine = create_engine(make_url(server_url).set(database=""))
    with engine.connect() as conn:
        current = int(conn.exec_driver_sql("SELECT @@innodb_buffer_pool_size").scalar_one())
        wanted = megabytes * 1024 * 1024
        if megabytes and current < wanted:
            conn.exec_driver_sql(f"SET GLOBAL innodb_buffer_pool_size = {wanted}")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                status = conn.exec_driver_sql(
                    "SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'"
                ).first()
                # Empty before any resize, "Completed resizing buffer pool ..." after one.
                if status is None or not status[1] or "completed" in str(status[1]).lower():
                    break
                time.sleep(0.5)
            current = int(conn.exec_driver_sql("SELECT @@innodb_buffer_pool_size").scalar_one())
        # A redo log of 96 MB (the default) makes a bulk load of the 1M tenant wait on
        # checkpoints; MariaDB 10.9+ resizes it at run time (older servers and MySQL keep theirs).
        if megabytes:
            with contextlib.suppress(DBAPIError):
                log = int(conn.exec_driver_sql("SELECT @@innodb_log_file_size").scalar_one())
                if log < 1024 * 1024 * 1024:
                    conn.exec_driver_sql("SET GLOBAL innodb_log_file_size = 1073741824")
        # Three servers of two workers, each with a 50-connection pool, plus the checks: more
        # than the default 151 connections.
        if int(conn.exec_driver_sql("SELECT @@max_connections").scalar_one()) < 500:
            conn.exec_driver_sql("SET GLOBAL max_connections = 500")
    engine.dispose()
    return current // (1024 * 1024)


def seed(url: str, spends: int, env: dict[str, str]) -> None:
    sh(
        sys.executable,
        "-m",
        "bench.loader",
        "--spends",
        str(spends),
        env={**env, "DATABASE_URL": url},
    )


TWENTY_RULES = [
    *[
        {
            "condition": {"amount_gt": 2000 + 100 * i, "currency_in": ["USD", "EUR"]},
            "action": {"type": "require_approval", "approver": "manager"},
            "priority": 10 + i,
        }
        for i in range(8)
    ],
    *[
        {
            "condition": {"any": [{"amount_gt": 5000 + i}, {"user_role_in": ["admin"]}]},
            "action": {"type": "flag", "flag": f"review_{i}"},
            "priority": 30 + i,
        }
        for i in range(6)
    ],
    *[
        {
            "condition": {"not": {"currency_in": ["USD"]}, "amount_gt": i},
            "action": {"type": "flag", "flag": "fx"},
            "priority": 50 + i,
        }
        for i in range(4)
    ],
    {
        "condition": {"amount_gt": 100000},
        "action": {"type": "block", "reason": "over the hard cap"},
        "priority": 1,
    },
    {
        "condition": {"amount_lt": 1, "source_in": ["card"]},
        "action": {"type": "auto_approve"},
        "priority": 0,
    },
]


@dataclass
class Tenant:
    admin_token: str
    company_id: str
    finance_token: str
    employee_token: str
    employee_email: str
    category_ids: list[str]
    spend_ids: list[str]
    cards: list[str]
    hot_card: str
    # The hot card's twin (the same 50.00 daily limit), which takes its warm-ups: the hot card's
    # first measured run then holds its 1,000 approvals, not a warm-up.
    warm_card: str
    secret: str


def prepare_tenant(base: str, admin_email: str, password: str) -> Tenant:
    client = httpx.Client(base_url=base, timeout=60)

    def login(email: str) -> str:
        response = client.post("/auth/login", json={"email": email, "password": password})
        response.raise_for_status()
        return str(response.json()["access_token"])

    admin = {"Authorization": f"Bearer {login(admin_email)}"}
    finance = client.get("/admin/users?role=finance", headers=admin).json()["items"][0]
    employees = client.get("/admin/users?role=employee&limit=200", headers=admin).json()["items"]
    for policy in client.get("/policies", headers=admin).json()["items"]:
        client.delete(f"/policies/{policy['id']}", headers=admin)
    client.post(
        "/policies",
        json={"name": "bench: 20 rules", "is_active": True, "rules": TWENTY_RULES},
        headers=admin,
    ).raise_for_status()
    categories = [c["id"] for c in client.get("/categories", headers=admin).json()["items"][:5]]
    secret = client.post("/companies/me/webhook-secret", headers=admin).json()["secret"]

    def issue(holder: dict[str, Any], amount: str, interval: str) -> str:
        card = client.post(
            "/cards",
            json={
                "user_id": holder["id"],
                "currency": "USD",
                "spending_limits": [{"amount": amount, "interval": interval}],
            },
            headers=admin,
        )
        card.raise_for_status()
        return str(card.json()["id"])

    cards = [issue(employee, "1000000", "monthly") for employee in employees[:100]]
    hot, warm = (issue(employee, "50.00", "daily") for employee in employees[:2])
    finance_token = login(finance["email"])
    spend_ids = [
        s["id"]
        for s in client.get(
            "/spends?limit=200", headers={"Authorization": f"Bearer {finance_token}"}
        ).json()["items"]
    ]
    return Tenant(
        admin["Authorization"].removeprefix("Bearer "),
        finance["company_id"],
        finance_token,
        login(employees[1]["email"]),
        employees[1]["email"],
        categories,
        spend_ids,
        cards,
        hot,
        warm,
        secret,
    )


def engine_microbench() -> float:
    from spendtrackr.apps.policies.engine import Facts, PolicyRule, compile_rules, evaluate
    from spendtrackr.apps.policies.rules import Rule

    rules = compile_rules(
        [
            PolicyRule(uuid.uuid4(), "bench", i, Rule.model_validate(r))
            for i, r in enumerate(TWENTY_RULES)
        ]
    )
    facts = Facts(
        amount=Decimal("2345.67"), currency="USD", user_role="employee", category_id=uuid.uuid4()
    )
    loops = 20000
    best = min(timeit.repeat(lambda: evaluate(facts, rules), number=loops, repeat=5))
    return loops / best


def summary_timing(base: str, token: str, n: int = 15) -> dict[str, float]:
    times = []
    with httpx.Client(
        base_url=base, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        client.get("/reports/spend-summary?group_by=category").raise_for_status()
        for _ in range(n):
            started = time.perf_counter()
            client.get("/reports/spend-summary?group_by=category").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": statistics.median(times), "max_ms": max(times), "runs": n}


def explain(url: str, company_hint: str) -> dict[str, list[dict[str, Any]]]:
    """The plans of the list's and the report's queries on a tenant. The page's steps and
    receipts are the API's own statements (index hints included), rendered with the ids of the
    tenant's newest page."""
    from spendtrackr.apps.approvals.service import _STEPS_OF
    from spendtrackr.apps.receipts.service import _RECEIPTS_OF

    engine = create_engine(url)
    plans = {}
    with engine.connect() as conn:
        company = conn.execute(
            text("SELECT company_id FROM user WHERE email = :e"), {"e": company_hint}
        ).scalar_one()
        page = (
            "SELECT * FROM spend WHERE company_id = :c ORDER BY created_at DESC, id DESC LIMIT 50"
        )
        ids = [
            uuid.UUID(str(i))
            for i in conn.execute(text(page.replace("*", "id")), {"c": company}).scalars()
        ]

        def as_sent(statement: Any) -> str:
            bound = statement.params(company_id=uuid.UUID(str(company)), spend_ids=ids)
            literal = {"literal_binds": True, "render_postcompile": True}
            return str(bound.compile(dialect=engine.dialect, compile_kwargs=literal))

        queries = {
            "GET /spends?limit=50 (finance)": page,
            "GET /spends total (capped)": "SELECT count(*) FROM (SELECT 1 FROM spend WHERE company_id = :c LIMIT 10001) AS capped",
            "the page's approval steps": as_sent(_STEPS_OF),
            "the page's receipts": as_sent(_RECEIPTS_OF),
            "spend-summary by category": "SELECT group_id, currency, sum(spend_count), sum(total) FROM spend_total WHERE company_id = :c AND dimension = 'category' GROUP BY group_id, currency HAVING sum(spend_count) > 0",
        }
        for name, sql in queries.items():
            params = {"c": company} if ":c" in sql else {}
            rows = conn.execute(text("EXPLAIN " + sql), params).mappings().all()
            plans[name] = [{k: v for k, v in row.items() if v is not None} for row in rows]
    engine.dispose()
    return plans


# --- the run ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of every scenario; RSS compared between them"
    )
    parser.add_argument(
        "--spends", type=int, default=100_000, help="spends of the regular bench tenant"
    )
    parser.add_argument(
        "--large", action="store_true", help="also the 1M-spend tenant (built once, then kept)"
    )
    parser.add_argument("--large-spends", type=int, default=1_000_000)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the regular bench database after the run (dropped by default)",
    )
    parser.add_argument(
        "--drop-large",
        action="store_true",
        help="drop the 1M-spend tenant's database after the run (kept by default)",
    )
    parser.add_argument(
        "--only",
        default="",
        help='scenarios to run: comma-separated parts of their names, e.g. "POST /spends,one card"',
    )
    parser.add_argument("--database", default="mysql+pymysql://root@127.0.0.1:3306/")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--name", default="latest", help="results file stem under bench/results")
    parser.add_argument(
        "--buffer-pool-mb",
        type=int,
        default=6144,
        help="grow MariaDB's InnoDB buffer pool to at least this (0: leave it)",
    )
    opts = parser.parse_args()
    (RESULTS / "tmp").mkdir(parents=True, exist_ok=True)
    ensure_tools()
    run = Run(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "mariadb": sh("mariadb", "--version").strip(),
            "wrk": sh("wrk", "-v", check=False).splitlines()[0]
            if sh("wrk", "-v", check=False)
            else "wrk",
        },
        options=vars(opts),
    )
    run.machine["innodb_buffer_pool_mb"] = size_database(opts.database, opts.buffer_pool_mb)
    console.print(f"[bold]seeding a tenant with {opts.spends:,} spends[/bold]")
    url, _ = fresh_database(opts.database, "spendtrackr_bench", keep=False)
    env = server_env(url, opts.redis)
    sh("redis-cli", "-n", opts.redis.rsplit("/", 1)[-1], "flushdb")
    with extras.timed() as loaded:
        seed(url, opts.spends, env)
    run.extra["bulk_load"] = {f"{opts.spends:,} spends": loaded}
    servers: list[Server] = []
    try:
        api = Server(
            "api",
            [
                *SPENDTRACKR,
                "serve",
                "--port",
                str(opts.port),
                "--workers",
                "2",
            ],
            env,
            opts.port,
        )
        servers.append(api)
        # Served as the API is (core/serving.py: a socket per worker), so that the ratios
        # compare the apps and not the ways of serving them.
        floor = Server(
            "floor",
            [
                sys.executable,
                "-c",
                "from spendtrackr.core import serving; serving.run('bench.floor:app', "
                f"host='127.0.0.1', port={opts.port + 1}, workers=2, access_log=False, "
                "log_level='warning')",
            ],
            env,
            opts.port + 1,
        )
        servers.append(floor)
        base = f"http://127.0.0.1:{opts.port}"
        admin_email = f"admin@bench{opts.spends}.spendtrackr.example"
        tenant = prepare_tenant(base, admin_email, "demo-password-1234")
        # A customer's webhook endpoint, subscribed to everything: the load below fills its
        # outbox, which the relay scenario drains afterwards.
        receiver = Server(
            "receiver",
            [
                sys.executable,
                "-c",
                f"from bench.extras import serve_receiver; serve_receiver({opts.port + 3})",
            ],
            env,
            opts.port + 3,
        )
        servers.append(receiver)
        httpx.post(
            f"{base}/webhook-endpoints",
            json={"url": f"http://127.0.0.1:{opts.port + 3}/hook"},
            headers={"Authorization": f"Bearer {tenant.admin_token}"},
            timeout=30,
        ).raise_for_status()
        cursor_base, cursor_token = base, tenant.finance_token
        cursor_tenant = (url, admin_email)
        large: tuple[Server, str, str, str] | None = None
        if opts.large:
            large_url, created = fresh_database(opts.database, "spendtrackr_bench_large", keep=True)
            if created or not _has_tenant(large_url, opts.large_spends):
                console.print(
                    f"[bold]building the {opts.large_spends:,}-spend tenant (once; kept for later runs)[/bold]"
                )
                with extras.timed() as loaded:
                    seed(large_url, opts.large_spends, env)
                run.extra["bulk_load"][f"{opts.large_spends:,} spends"] = loaded
                large_email = f"admin@bench{opts.large_spends}.spendtrackr.example"
                run.extra["bulk_load_invariants"] = extras.load_invariants(
                    large_url, env, large_email
                )
            large_server = Server(
                "api-large",
                [
                    *SPENDTRACKR,
                    "serve",
                    "--port",
                    str(opts.port + 2),
                    "--workers",
                    "2",
                ],
                server_env(large_url, opts.redis),
                opts.port + 2,
            )
            servers.append(large_server)
            large_base = f"http://127.0.0.1:{opts.port + 2}"
            large_email = f"admin@bench{opts.large_spends}.spendtrackr.example"
            finance_large = _role_token(large_base, large_email, "finance")
            large = (
                large_server,
                finance_large,
                _role_token(large_base, large_email, "employee"),
                _role_token(large_base, large_email, "manager"),
            )
            cursor_base, cursor_token = large_base, finance_large
            cursor_tenant = (large_url, large_email)
            run.extra["explain_1m"] = explain(large_url, large_email)
        run.extra["explain_100k"] = explain(url, admin_email)
        cursors = extras.cursor_paths(cursor_tenant[0], env, cursor_tenant[1])
        cursor_size = "1M" if large else f"{opts.spends // 1000}k"
        budget: dict[str, str] = {}

        def add_budget() -> None:
            response = httpx.post(
                f"{base}/budgets",
                json={
                    "name": "bench: the company, hard",
                    "amount": "1000000000",
                    "period": "monthly",
                    "mode": "hard",
                },
                headers={"Authorization": f"Bearer {tenant.admin_token}"},
                timeout=30,
            )
            response.raise_for_status()
            budget["id"] = response.json()["id"]

        def drop_budget() -> None:
            httpx.delete(
                f"{base}/budgets/{budget.pop('id')}",
                headers={"Authorization": f"Bearer {tenant.admin_token}"},
                timeout=30,
            ).raise_for_status()

        hooks = {"POST /spends (20 rules, a hard budget)": (add_budget, drop_budget)}
        # The hot card's warm-ups go to its twin, so that its first measured run holds its
        # 1,000 approvals (the target counts them) and every later one its declines.
        warm_ups = {
            targets.HOT_CARD: {
                "BENCH_SECRET": tenant.secret,
                "BENCH_CARDS": tenant.warm_card,
                "BENCH_AMOUNT": "0.05",
            }
        }

        def scenarios() -> list[tuple[str, str, str, dict[str, str], int]]:
            finance = {"BENCH_TOKEN": tenant.finance_token}
            items = [
                (
                    "floor",
                    f"http://127.0.0.1:{opts.port + 1}/floor",
                    "floor.lua",
                    {"BENCH_TOKEN": tenant.employee_token},
                    opts.connections,
                ),
                (
                    "POST /spends (20 rules)",
                    f"{base}/spends",
                    "post_spend.lua",
                    {
                        "BENCH_TOKEN": tenant.employee_token,
                        "BENCH_CATEGORIES": ",".join(tenant.category_ids),
                    },
                    opts.connections,
                ),
                (
                    "POST /spends (20 rules, a hard budget)",
                    f"{base}/spends",
                    "post_spend.lua",
                    {
                        "BENCH_TOKEN": tenant.employee_token,
                        "BENCH_CATEGORIES": ",".join(tenant.category_ids),
                    },
                    opts.connections,
                ),
                (
                    "GET /spends?limit=50 (100k)",
                    base,
                    "get.lua",
                    {**finance, "BENCH_PATHS": "/spends?limit=50"},
                    opts.connections,
                ),
                (
                    "GET /spends/{id}",
                    base,
                    "get.lua",
                    {
                        **finance,
                        "BENCH_PATHS": ",".join(f"/spends/{i}" for i in tenant.spend_ids[:100]),
                    },
                    opts.connections,
                ),
                (
                    targets.APPROVALS,
                    base,
                    "authorize.lua",
                    {"BENCH_SECRET": tenant.secret, "BENCH_CARDS": ",".join(tenant.cards)},
                    opts.connections,
                ),
                (
                    targets.HOT_CARD,
                    base,
                    "authorize.lua",
                    {
                        "BENCH_SECRET": tenant.secret,
                        "BENCH_CARDS": tenant.hot_card,
                        "BENCH_AMOUNT": "0.05",
                    },
                    16,
                ),
                *[
                    (
                        f"cursor page, {where} ({cursor_size})",
                        cursor_base,
                        "get.lua",
                        {"BENCH_TOKEN": cursor_token, "BENCH_PATHS": path},
                        8,
                    )
                    for where, path in cursors.items()
                ],
                (
                    "POST /auth/login",
                    base,
                    "login.lua",
                    {"BENCH_EMAIL": tenant.employee_email, "BENCH_PASSWORD": "demo-password-1234"},
                    opts.connections,
                ),
            ]
            if large:
                large_base_url = f"http://127.0.0.1:{opts.port + 2}"
                items.insert(
                    3,
                    (
                        "GET /spends?limit=50 (1M)",
                        large_base_url,
                        "get.lua",
                        {"BENCH_TOKEN": large[1], "BENCH_PATHS": "/spends?limit=50"},
                        opts.connections,
                    ),
                )
                items.insert(
                    4,
                    (
                        # One person's spends among a million: the page an employee opens.
                        "GET /spends?limit=50 (1M, an employee's own)",
                        large_base_url,
                        "get.lua",
                        {"BENCH_TOKEN": large[2], "BENCH_PATHS": "/spends?limit=50"},
                        opts.connections,
                    ),
                )
                items.insert(
                    5,
                    (
                        # A manager's inbox among 100,000 open steps, each way it can be theirs.
                        "GET /approvals (1M, a manager)",
                        large_base_url,
                        "get.lua",
                        {"BENCH_TOKEN": large[3], "BENCH_PATHS": "/approvals"},
                        opts.connections,
                    ),
                )
                items.insert(
                    6,
                    (
                        # A client polling the event feed from a cursor deep in a 2M-entry chain.
                        "GET /events (1M, from position 1,000,000)",
                        large_base_url,
                        "get.lua",
                        {"BENCH_TOKEN": large[1], "BENCH_PATHS": "/events?after=1000000"},
                        opts.connections,
                    ),
                )
                items.append(
                    (
                        "spend-summary by category (1M)",
                        large_base_url,
                        "get.lua",
                        {
                            "BENCH_TOKEN": large[1],
                            "BENCH_PATHS": "/reports/spend-summary?group_by=category",
                        },
                        4,
                    )
                )
                items.append(
                    (
                        # Finance looking back: everyone's spends over a year that ended half
                        # a year ago, half the tenant's spends in range, none of the newest. A
                        # report-sized read (a third of a second of MariaDB's CPU each): last,
                        # and at 4 connections, so that the requests still queued when wrk
                        # stops do not run into the next scenario.
                        "GET /spends, a year past (1M)",
                        large_base_url,
                        "get.lua",
                        {"BENCH_TOKEN": large[1], "BENCH_PATHS": _year_past()},
                        4,
                    )
                )
            chosen = selected([s[0] for s in items], opts.only)
            return [s for s in items if s[0] in chosen]

        db_pid = database_pid()
        for round_no in range(opts.rounds):
            console.print(f"[bold]round {round_no + 1}/{opts.rounds}[/bold]")
            results = []
            for name, target, script, extra, conns in scenarios():
                before_after = hooks.get(name)
                if before_after:
                    before_after[0]()
                wrk(
                    name,
                    target,
                    script,
                    warm_ups.get(name, extra),
                    connections=conns,
                    seconds=opts.warmup,
                    threads=opts.threads,
                )
                approved_before = _approved(url, tenant.hot_card) if name == targets.HOT_CARD else 0
                server = next(s for s in servers if s.port == urlsplit(target).port)
                app_before = server.cpu_seconds()
                db_before = cpu_seconds(db_pid) if db_pid else 0.0
                result = wrk(
                    name,
                    target,
                    script,
                    extra,
                    connections=conns,
                    seconds=opts.duration,
                    threads=opts.threads,
                )
                if result.requests:
                    per_request = 1000 / result.requests
                    result.app_cpu_ms = round((server.cpu_seconds() - app_before) * per_request, 2)
                    if db_pid:
                        result.db_cpu_ms = round((cpu_seconds(db_pid) - db_before) * per_request, 2)
                if name == targets.HOT_CARD:
                    result.approvals = _approved(url, tenant.hot_card) - approved_before
                if before_after:
                    before_after[1]()
                results.append(result)
                console.print(
                    f"  {name}: {result.requests_per_s:.0f} req/s, p99 {result.p99_ms:.1f} ms, "
                    f"non-2xx {result.non_2xx}, CPU a request {result.app_cpu_ms} ms "
                    f"(MariaDB {result.db_cpu_ms})"
                )
            floor_rps = results[0].requests_per_s
            for result in results:
                result.ratio_to_floor = (
                    round(result.requests_per_s / floor_rps, 3) if floor_rps else None
                )
            run.rounds.append(results)
            run.rss_mb.append(
                {
                    s.name: round(max(s.worker_rss_mb() or [0]), 1)
                    for s in servers
                    if s.name not in ("floor", "receiver")
                }
            )
        if large:
            run.extra["spend_summary_1m"] = summary_timing(
                f"http://127.0.0.1:{opts.port + 2}", large[1]
            )
        run.extra["hot_card_limit_check"] = _hot_card_check(url, tenant.hot_card)
        run.extra["audit_chain_after_load"] = _audit_check(base, tenant.finance_token)
        run.extra["idempotency_race"] = _idempotency_race(base, url, tenant)
        run.extra["policy_engine_evals_per_s"] = round(engine_microbench())
        console.print("[bold]the outbox relay, the audit chain's appends[/bold]")
        run.extra["outbox_relay"] = extras.relay(env)
        run.extra["audit_chain_appends_one_company"] = extras.chain_appends(
            env, uuid.UUID(tenant.company_id)
        )
        if db_pid and run.rounds:
            try:
                run.extra["ceiling"] = ceilings(
                    opts.database,
                    url,
                    base,
                    f"http://127.0.0.1:{opts.port + 1}",
                    tenant,
                    run,
                    db_pid,
                )
            except (pymysql.Error, httpx.HTTPError, OSError) as error:  # reported; the rest kept
                console.print(f"[red]ceiling not measured: {error!r}[/red]")
                run.extra["ceiling_error"] = repr(error)
    finally:
        for server in reversed(servers):
            server.stop()
        # The bench's own databases: the regular one is made afresh by every run, the 1M one
        # is kept (it takes 10-30 minutes to build) unless asked otherwise.
        dropped = [] if opts.keep else ["spendtrackr_bench"]
        dropped += ["spendtrackr_bench_large"] if opts.drop_large else []
        drop_databases(opts.database, dropped)
    report(run, opts.name)
    return 0


def _year_past() -> str:
    """A page of everyone's spends over the year that ended 180 days ago."""
    end = datetime.now(UTC).date() - timedelta(days=180)
    start = end - timedelta(days=364)
    return f"/spends?limit=50&date_from={start.isoformat()}&date_to={end.isoformat()}"


def selected(names: list[str], only: str) -> set[str]:
    """The scenarios `--only` picks. Each comma-separated part matches the names it is a part of,
    ignoring case ("one card", "post /spends"): whole names would not do, some hold commas. The
    floor always runs, since every ratio needs it; a part that matches nothing is an error."""
    parts = [part.strip().lower() for part in only.split(",") if part.strip()]
    if not parts:
        return set(names)
    unknown = [part for part in parts if not any(part in name.lower() for name in names)]
    if unknown:
        raise SystemExit(f"--only: no scenario matches {unknown}; the scenarios: {names}")
    return {name for name in names if name == "floor" or any(p in name.lower() for p in parts)}


def _has_tenant(url: str, spends: int) -> bool:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM user WHERE email = :e"),
            {"e": f"admin@bench{spends}.spendtrackr.example"},
        ).first()
    engine.dispose()
    return found is not None


def _role_token(base: str, admin_email: str, role: str) -> str:
    """A token of the tenant's first user with `role` (by the admin's list)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        admin = client.post(
            "/auth/login", json={"email": admin_email, "password": "demo-password-1234"}
        ).json()["access_token"]
        users = client.get(
            f"/admin/users?role={role}", headers={"Authorization": f"Bearer {admin}"}
        ).json()["items"]
        return str(
            client.post(
                "/auth/login", json={"email": users[0]["email"], "password": "demo-password-1234"}
            ).json()["access_token"]
        )


def _approved(url: str, card_id: str) -> int:
    """How many authorizations of the card were approved so far."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM card_authorization WHERE card_id = :c AND approved = 1"
                    ),
                    {"c": uuid.UUID(card_id).hex},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _hot_card_check(url: str, card_id: str) -> dict[str, Any]:
    """The hot card's approvals against its daily limit, day by day (the tenant's days are UTC's:
    a run that passes midnight approves up to the limit again on the new day)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        days = conn.execute(
            text(
                "SELECT date(created_at), count(*), coalesce(sum(amount), 0) "
                "FROM card_authorization WHERE card_id = :c AND approved = 1 "
                "GROUP BY date(created_at) ORDER BY 1"
            ),
            {"c": uuid.UUID(card_id).hex},
        ).all()
        declined = conn.execute(
            text("SELECT count(*) FROM card_authorization WHERE card_id = :c AND approved = 0"),
            {"c": uuid.UUID(card_id).hex},
        ).scalar_one()
    engine.dispose()
    sums = {str(day): Decimal(total) for day, _count, total in days}
    return {
        "limit": "50.00 daily",
        "approved": sum(count for _day, count, _total in days),
        "approved_sum": str(sum(sums.values(), Decimal(0))),
        "approved_sum_by_day": {day: str(total) for day, total in sums.items()},
        "declined": declined,
        "exact": all(total <= Decimal("50.00") for total in sums.values()),
    }


def _audit_check(base: str, finance_token: str) -> dict[str, Any]:
    """After the load: the tenant's whole audit chain still verifies (one line, no gap)."""
    response = httpx.get(
        f"{base}/audit-logs/verify",
        headers={"Authorization": f"Bearer {finance_token}"},
        timeout=600,
    )
    response.raise_for_status()
    return dict(response.json())


def ceilings(
    server_url: str, url: str, base: str, floor_base: str, tenant: Tenant, run: Run, db_pid: str
) -> dict[str, Any]:
    """The best ratio to the floor that each scenario's statements leave possible (see
    bench/ceiling.py), beside the ratio measured in the last round."""
    with httpx.Client(base_url=base, timeout=60) as client:
        return _ceilings(server_url, url, client, floor_base, tenant, run, db_pid)


def _ceilings(
    server_url: str,
    url: str,
    client: httpx.Client,
    floor_base: str,
    tenant: Tenant,
    run: Run,
    db_pid: str,
) -> dict[str, Any]:
    employee = {"Authorization": f"Bearer {tenant.employee_token}"}
    finance = {"Authorization": f"Bearer {tenant.finance_token}"}

    # Each request goes out on `on`: the capture's own client, or a fresh one to warm a worker.
    def page(on: httpx.Client) -> None:
        on.get("/spends?limit=50", headers=finance).raise_for_status()

    def floor(_: httpx.Client) -> None:  # the floor's own server, a connection each
        httpx.post(
            f"{floor_base}/floor", json={"note": "bench"}, headers=employee
        ).raise_for_status()

    def declined(on: httpx.Client) -> None:  # the hot card is at its limit by now
        on.post(
            "/card-network/authorizations",
            json={
                "card_id": tenant.hot_card,
                "amount": "0.05",
                "currency": "USD",
                "merchant_name": "Bench Cafe",
                "authorization_id": f"ceiling-{uuid.uuid4().hex}",
            },
            headers={"x-webhook-secret": tenant.secret},
        ).raise_for_status()

    def submit(on: httpx.Client) -> None:
        on.post(
            "/spends",
            json={
                "amount": "123.45",
                "currency": "USD",
                "spend_date": "2026-11-12",
                "description": "Bench purchase",
                "category_id": tenant.category_ids[0],
            },
            headers={**employee, "Idempotency-Key": f"ceiling-{uuid.uuid4().hex}"},
        ).raise_for_status()

    senders: dict[str, Callable[[httpx.Client], None]] = {
        "GET /spends?limit=50 (100k)": page,  # first: the page must not hold the new spend
        "floor": floor,
        "card auth, one card (16 conns)": declined,
        "POST /spends (20 rules)": submit,
    }
    # Before capturing, each request warms every worker's caches (compiled policies, a card's
    # last decline, when its holder was last told of one): sixteen fresh connections each, which
    # the kernel spreads over the workers (one worker missed: 2 ** -15 with two of them).
    # Otherwise a request captured on a cold worker counts statements the steady state never
    # sends (a decline notice's two).
    for _ in range(16):
        with httpx.Client(base_url=client.base_url, timeout=60) as fresh:
            for send in senders.values():
                send(fresh)
    requests: dict[str, Callable[[], None]] = {
        name: functools.partial(send, client) for name, send in senders.items()
    }
    page_ids = [s["id"] for s in client.get("/spends?limit=50", headers=finance).json()["items"]]
    replays = ceiling.measure(
        server_url,
        make_url(url).database or "",
        page_ids,
        requests,
        lambda: cpu_seconds(db_pid),
    )
    measured = {r.name: r for r in run.rounds[-1]}
    floor_result = measured["floor"]
    floor_cpu = (floor_result.app_cpu_ms or 0.0) + (floor_result.db_cpu_ms or 0.0)
    out: dict[str, Any] = {"floor_cpu_ms": round(floor_cpu, 2)}
    for name, replayed in replays.items():
        out[name] = {
            **ceiling.as_dict(replayed),
            "ceiling_x_floor": round(ceiling.ceiling(floor_cpu, replays["floor"], replayed), 3),
            "measured_x_floor": measured[name].ratio_to_floor if name in measured else None,
        }
    return out


def _idempotency_race(base: str, url: str, tenant: Tenant, n: int = 16) -> dict[str, Any]:
    """After the load: `n` concurrent submissions with one Idempotency-Key create one spend; the
    others replay it or are told it is in progress (409), and a retry afterwards replays it."""
    key = f"bench-race-{uuid.uuid4().hex}"
    body = {
        "amount": "77.70",
        "currency": "USD",
        "spend_date": "2026-11-02",
        "description": key,
        "category_id": tenant.category_ids[0],
    }
    headers = {"Authorization": f"Bearer {tenant.employee_token}", "Idempotency-Key": key}
    with httpx.Client(base_url=base, timeout=60) as client, ThreadPoolExecutor(n) as pool:
        answers = list(
            pool.map(lambda _: client.post("/spends", json=body, headers=headers), range(n))
        )
        retry = client.post("/spends", json=body, headers=headers)
    created = [
        a for a in answers if a.status_code == 201 and "idempotent-replayed" not in a.headers
    ]
    replayed = [a for a in answers if a.status_code == 201 and "idempotent-replayed" in a.headers]
    in_progress = [a for a in answers if a.status_code == 409]
    ids = {a.json()["id"] for a in [*created, *replayed, retry] if a.status_code == 201}
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT count(*) FROM spend WHERE description = :d"), {"d": key}
        ).scalar_one()
    engine.dispose()
    return {
        "requests": n,
        "created": len(created),
        "replayed": len(replayed),
        "in_progress_409": len(in_progress),
        "other": n - len(created) - len(replayed) - len(in_progress),
        "retry_replayed": retry.headers.get("idempotent-replayed") == "true",
        "spend_rows": rows,
        "exact": rows == 1
        and len(created) == 1
        and len(ids) == 1
        and len(created) + len(replayed) + len(in_progress) == n
        and retry.headers.get("idempotent-replayed") == "true",
    }


def report(run: Run, name: str = "latest") -> None:
    last = run.rounds[-1]
    table = Table(
        "scenario",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "non-2xx",
        "x floor",
        "CPU ms",
        "db CPU ms",
        title="SpendTrackr bench (last round; CPU a request: the server's, MariaDB's)",
    )
    for r in last:
        table.add_row(
            r.name,
            f"{r.requests_per_s:.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p90_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.non_2xx),
            f"{r.ratio_to_floor}",
            f"{r.app_cpu_ms}",
            f"{r.db_cpu_ms}",
        )
    console.print(table)
    console.print(f"worker RSS (MB, max per server) by round: {run.rss_mb}")
    for key, value in run.extra.items():
        if not key.startswith("explain"):
            console.print(f"{key}: {value}")
    stamp = run.started_at.replace(":", "").replace("-", "")
    payload = {**asdict(run), "rounds": [[asdict(r) for r in rnd] for rnd in run.rounds]}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str))
    lines = [
        f"# Bench run {run.started_at}",
        "",
        f"Machine: {run.machine}",
        "",
        f"Options: {run.options}",
        "",
        "CPU a request (ms): the server's processes (`CPU ms`) and MariaDB's (`db CPU ms`), from "
        "`/proc` over the measured run.",
        "",
        "| scenario | req/s | p50 ms | p90 ms | p99 ms | non-2xx | x floor | CPU ms | db CPU ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.name} | {r.requests_per_s:.0f} | {r.p50_ms:.1f} | {r.p90_ms:.1f} | {r.p99_ms:.1f} "
        f"| {r.non_2xx} | {r.ratio_to_floor} | {r.app_cpu_ms} | {r.db_cpu_ms} |"
        for r in last
    ]
    lines += ["", f"Worker RSS (MB, max per server) after each round: {run.rss_mb}", ""]
    lines += [
        f"- {k}: {v}"
        for k, v in run.extra.items()
        if not k.startswith("explain") and k != "ceiling"
    ]
    if "ceiling" in run.extra:
        found = run.extra["ceiling"]
        lines += [
            "",
            "## Ceiling",
            "",
            "The best ratio to the floor that each scenario's statements leave possible: the "
            "statements of one request replayed as literal SQL through bare PyMySQL (see "
            f"`bench/ceiling.py`), against the floor's {found['floor_cpu_ms']} ms of CPU a "
            "request in the last round.",
            "",
            "| scenario | statements | replay CPU ms (client + MariaDB) | ceiling x floor "
            "| measured x floor |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {c['statements']} | {c['client_cpu_ms']} + {c['db_cpu_ms']} "
            f"| {c['ceiling_x_floor']} | {c['measured_x_floor']} |"
            for name, c in found.items()
            if name != "floor_cpu_ms"
        ]
        lines += [
            "",
            "Each statement's mean wall time in the replay (ms, the round trip included):",
            "",
        ]
        lines += [
            f"- {name}: "
            + ", ".join(f"{h} {ms}" for h, ms in zip(c["heads"], c["statement_ms"], strict=True))
            for name, c in found.items()
            if name != "floor_cpu_ms"
        ]
    lines += [
        "",
        "## Targets",
        "",
        "Each target of this round of work, with the bound beside it (`bench/targets.py`).",
        "",
        *targets.as_markdown(targets.targets(run)),
    ]
    for key in ("explain_100k", "explain_1m"):
        if key in run.extra:
            lines += ["", f"## EXPLAIN ({key.split('_')[1]})", ""]
            for query, plan in run.extra[key].items():
                lines += [f"- {query}: `{json.dumps(plan, default=str)}`"]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    console.print(f"written bench/results/{name}.json and {name}.md (run {stamp})")


if __name__ == "__main__":
    sys.exit(main())
