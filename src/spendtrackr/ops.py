"""Liveness and readiness (public, cheap); metrics (behind a token, or on a port of their own)."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from spendtrackr.core import metrics
from spendtrackr.core.deps import SettingsDep
from spendtrackr.core.errors import NotFound, Unauthorized
from spendtrackr.core.routing import JSONRoute

router = APIRouter(route_class=JSONRoute, tags=["ops"])
logger = logging.getLogger(__name__)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _probe(state: Any) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        logger.warning("readiness: database unavailable: %s", type(exc).__name__)
        checks["database"] = "unavailable"
    if state.cache.backend == "redis":
        checks["redis"] = "ok" if state.cache.ping() else "unavailable"
    else:
        checks["redis"] = "not_configured"
    replica = state.read_replica
    if replica is not None:
        # Read by the replica monitor, not here: a replica away only sends reads to the primary.
        checks["read_replica"] = "ok" if replica.usable() else "unavailable"
        checks["read_replica_lag_seconds"] = replica.lag
    return checks


@router.get("/readyz", responses={503: {"description": "The database is unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers. Redis or the read replica down is reported as
    `degraded` but stays ready: the API works without them (idempotency falls back to the
    database, rate limits fail open, reads go to the primary)."""
    # In a thread of its own, never a route's: a check that waited for a route thread could
    # take the last one from a request that holds the database (SQLite's single writer) and
    # needs a thread to finish, and both would wait out the busy timeout.
    state = request.app.state
    checks = await anyio.to_thread.run_sync(_probe, state, limiter=state.probe_threads)
    ready = checks["database"] == "ok"
    status = (
        "ok"
        if ready and "unavailable" not in (checks["redis"], checks.get("read_replica"))
        else ("degraded" if ready else "unavailable")
    )
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, responses={401: {}, 404: {}})
def prometheus_metrics(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Prometheus text format, for a scraper holding `METRICS_TOKEN` (as a bearer token). Not
    served here when metrics have a port of their own (`METRICS_PORT`) or no token is set."""
    if settings.metrics_port is not None or settings.metrics_token is None:
        raise NotFound("Not found")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    if not hmac.compare_digest((authorization or "").encode(), expected):
        raise Unauthorized("A metrics token is required", code="not_authenticated")
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
