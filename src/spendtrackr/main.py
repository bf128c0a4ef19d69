"""create_app(): routers, middleware, exception handlers; nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from spendtrackr import ops, web
from spendtrackr.apps.apikeys.routes import router as api_keys_router
from spendtrackr.apps.approvals.routes import delegations as delegations_router
from spendtrackr.apps.approvals.routes import router as approvals_router
from spendtrackr.apps.audit.routes import router as audit_router
from spendtrackr.apps.auth.routes import me as me_router
from spendtrackr.apps.auth.routes import public as auth_router
from spendtrackr.apps.budgets.routes import router as budgets_router
from spendtrackr.apps.cards.routes import authorizations as card_authorizations_router
from spendtrackr.apps.cards.routes import network as card_network_router
from spendtrackr.apps.cards.routes import router as cards_router
from spendtrackr.apps.cards.routes import transactions as card_transactions_router
from spendtrackr.apps.catalog.routes import categories, vendors
from spendtrackr.apps.companies.routes import router as companies_router
from spendtrackr.apps.events.routes import router as events_router
from spendtrackr.apps.ledger.routes import accounting as accounting_router
from spendtrackr.apps.ledger.routes import router as ledger_router
from spendtrackr.apps.notifications.routes import preferences as notification_preferences
from spendtrackr.apps.notifications.routes import router as notifications_router
from spendtrackr.apps.notifications.routes import unsubscribe as unsubscribe_router
from spendtrackr.apps.payouts.routes import bank_account as bank_account_router
from spendtrackr.apps.payouts.routes import router as payouts_router
from spendtrackr.apps.policies.routes import router as policies_router
from spendtrackr.apps.rates.routes import router as rates_router
from spendtrackr.apps.receipts.extractors import build_extractor
from spendtrackr.apps.receipts.routes import router as receipts_router
from spendtrackr.apps.reports.routes import router as reports_router
from spendtrackr.apps.scim import routes as scim_routes
from spendtrackr.apps.spends.routes import router as spends_router
from spendtrackr.apps.teams.routes import router as teams_router
from spendtrackr.apps.users.deps import asks_for_caller, get_current_user
from spendtrackr.apps.users.routes import people as people_router
from spendtrackr.apps.users.routes import router as users_router
from spendtrackr.apps.webhooks.routes import deliveries as webhook_deliveries
from spendtrackr.apps.webhooks.routes import endpoints as webhook_endpoints
from spendtrackr.apps.webhooks.routes import feed as event_feed
from spendtrackr.core import docs, handlers
from spendtrackr.core.cache import build_cache
from spendtrackr.core.config import Settings, get_settings
from spendtrackr.core.db import build_engine, size_thread_pool, utcnow
from spendtrackr.core.logging import configure_logging
from spendtrackr.core.middleware import RequestContextMiddleware, UploadRoutes
from spendtrackr.core.openapi import errors
from spendtrackr.core.ratelimit import RateLimiter
from spendtrackr.core.replica import ReadReplica
from spendtrackr.core.routing import add_routes, index_routes
from spendtrackr.core.security import Passwords, Tokens
from spendtrackr.core.storage import LocalStorage
from spendtrackr.sessions import session_factory

DESCRIPTION = """
Multi-tenant spend management: companies, users and teams; spends checked by JSON policies and
routed through approvals; virtual cards; receipts read by OCR; a tamper-evident audit log.

Authenticate with `POST /auth/login` (or **Authorize** here, with email and password), then send
`Authorization: Bearer <access_token>`. Errors are `{"detail", "code"}`.

Money: every spend keeps the amount and currency it was entered in and its price in the company's
base currency (`base_amount`, `fx_rate`, `fx_date`), fixed at submission; policies, card limits,
budgets, summaries and the ledger compare and add up base amounts. Budgets cap a team's, a
category's or the company's spend per period (`/budgets`); each company keeps its own ledger
accounts and closes its books month by month (`/accounting`): a write dated in closed books is a
409 `period_closed`.

Consistency: a deployment may serve lists, reports, exports and the event feed from a read
replica. Such a read is at most a few seconds old (the replica's allowed lag plus two seconds),
and never older than your own writes: after a write by your user or API key, your reads go to
the primary for that long. Single resources (`GET /spends/{id}`...), the session check and
every write always use the primary.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    for line in settings.deprecations():
        logging.getLogger("spendtrackr").warning(line)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        size_thread_pool(settings)  # sync routes run in it; the database pool matches it
        if app.state.read_replica is not None:
            app.state.read_replica.start()
        yield
        if app.state.read_replica is not None:
            app.state.read_replica.stop()
        app.state.cache.close()
        app.state.engine.dispose()

    app = FastAPI(
        title=settings.app_name,
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by core/docs.py, without a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # What any operation can answer: malformed input, too large a body, rate limits, and a
        # database that is away or a server too busy to take the request in time.
        responses=errors(400, 413, 422, 429, 503),
    )
    engine = build_engine(settings)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine, settings)
    app.state.request_slots = anyio.Semaphore(settings.threadpool_size, fast_acquire=True)
    # Reading a receipt after its upload may wait on Gemini for up to its timeout: those reads
    # get threads of their own, so that they never take the routes' (receipts/routes.py).
    app.state.ocr_threads = anyio.CapacityLimiter(settings.ocr_in_process_threads)
    app.state.probe_threads = anyio.CapacityLimiter(1)  # /readyz: never a route's thread
    app.state.cache = build_cache(settings.redis_url, settings.redis_timeout_seconds)
    app.state.read_replica = None
    if settings.database_read_url:
        replica_engine = build_engine(settings, settings.database_read_url)
        app.state.read_replica = ReadReplica(
            replica_engine,
            session_factory(replica_engine, settings),
            app.state.cache,
            primary=engine,
            max_lag_seconds=settings.database_read_max_lag_seconds,
        )
    app.state.limiter = RateLimiter(settings)
    app.state.passwords = Passwords(settings)
    app.state.tokens = Tokens(settings)
    app.state.storage = LocalStorage(settings.storage_path)
    app.state.clock = utcnow
    app.state.extractor = build_extractor(settings)

    handlers.install(app)
    scim_routes.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "Idempotent-Replayed",
                "Retry-After",
                "RateLimit",
                "RateLimit-Policy",
            ],
        )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes + 64 * 1024,
        accepts_upload=UploadRoutes(
            r for router in (*ROUTERS, *web.ROUTERS) for r in router.routes
        ),
    )

    docs.install(
        app,
        openapi_url=app.openapi_url or "/openapi.json",
        swagger_settings={
            "persistAuthorization": True,
            "deepLinking": True,
            "showExtensions": True,
            "showCommonExtensions": True,
            "validatorUrl": None,  # Swagger's default sends the spec to an outside validator
        },
    )
    add_routes(app, *public(PUBLIC_ROUTERS))
    web.install(app)
    add_routes(app, *web.ROUTERS)
    add_routes(app, *signed_in(USER_ROUTERS))
    index_routes(app)
    return app


def signed_in(routers: tuple[APIRouter, ...]) -> tuple[APIRouter, ...]:
    """The routers, once each route of each is known to check the caller's session first
    (built with `SIGNED_IN`): a route that would answer anyone stops the app from starting."""
    for router in routers:
        for route in router.routes:
            first = route.dependant.dependencies[:1] if isinstance(route, APIRoute) else []
            if not first or first[0].call is not get_current_user:
                raise RuntimeError(f"{route}: a signed-in route needs dependencies=SIGNED_IN")
    return routers


def public(routers: tuple[APIRouter, ...]) -> tuple[APIRouter, ...]:
    """The routers, once no route of theirs asks for the signed-in caller (`CurrentUser`), whom
    only `SIGNED_IN` looks for: such a route stops the app from starting."""
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and asks_for_caller(route.dependant):
                raise RuntimeError(f"{route}: a route that asks for the caller needs SIGNED_IN")
    return routers


# Each router's routes are added to the app once, as they are (`add_routes`): their paths are
# the paths clients call (what `UploadRoutes` matches).
PUBLIC_ROUTERS: tuple[APIRouter, ...] = (
    ops.router,
    auth_router,
    # Webhooks authenticate with the company's webhook secret instead of a user token.
    card_network_router,
    events_router,
    # Signed for one person and one kind of email, followed from a mail client.
    unsubscribe_router,
    # Identity providers, with the company's SCIM token.
    scim_routes.router,
)
USER_ROUTERS: tuple[APIRouter, ...] = (
    me_router,
    companies_router,
    users_router,
    people_router,
    teams_router,
    vendors,
    categories,
    spends_router,
    policies_router,
    approvals_router,
    delegations_router,
    receipts_router,
    cards_router,
    card_authorizations_router,
    card_transactions_router,
    reports_router,
    budgets_router,
    payouts_router,
    bank_account_router,
    ledger_router,
    accounting_router,
    notifications_router,
    notification_preferences,
    audit_router,
    webhook_endpoints,
    webhook_deliveries,
    event_feed,
    api_keys_router,
    rates_router,
    scim_routes.token_router,
)
ROUTERS = PUBLIC_ROUTERS + USER_ROUTERS
