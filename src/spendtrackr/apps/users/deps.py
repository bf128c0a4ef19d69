"""Who is calling: `CurrentUser` and capability checks for routes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Final

from fastapi import Depends, Request, params
from fastapi.dependencies.models import Dependant
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.apikeys import service as apikeys_service
from spendtrackr.apps.apikeys.scopes import ROUTES as API_KEY_ROUTES
from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.users.models import AuthSession, Role, User
from spendtrackr.apps.users.permissions import Capability, can
from spendtrackr.core.config import Settings
from spendtrackr.core.db import SessionDep, id_param, use_replica
from spendtrackr.core.deps import LimiterDep, NowDep, SettingsDep, TokensDep
from spendtrackr.core.errors import Forbidden, Unauthorized
from spendtrackr.core.ratelimit import RateLimiter
from spendtrackr.core.replica import ReadReplica
from spendtrackr.core.security import InvalidToken, Tokens

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)

# Built once, executed with parameters: building it per request would cost as much CPU as the
# query (docs/DESIGN.md, "Statements on the hot paths are built once").
_SESSION_USER = (
    select(User, AuthSession.token_version, AuthSession.revoked_at, AuthSession.expires_at)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(AuthSession.id == id_param("session_id"), User.id == id_param("user_id"))
)


def get_current_user(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    tokens: TokensDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    now: NowDep,
) -> User:
    """The token's user, if the token verifies and its session is alive.

    One indexed join per request: a logout, a refresh-token reuse, a password change or a
    deactivation takes effect on the very next request, not when the access token expires.
    The caller is kept on the request for `CurrentUser`.
    """
    if not token:
        raise Unauthorized("Not authenticated")
    if apikeys_service.is_api_key(token):
        user = _api_key_principal(request, session, token, limiter, settings, now)
    else:
        user = _session_user(request, session, token, tokens, limiter, settings, now)
    request.state.user = user
    return user


def _session_user(
    request: Request,
    session: Session,
    token: str,
    tokens: Tokens,
    limiter: RateLimiter,
    settings: Settings,
    now: datetime,
) -> User:
    try:
        claims = tokens.verify_access(token)
    except InvalidToken:
        raise Unauthorized("Invalid or expired token", code="invalid_token") from None
    row = session.execute(
        _SESSION_USER, {"session_id": claims.session_id, "user_id": claims.user_id}
    ).one_or_none()
    if row is None:
        raise Unauthorized("Invalid or expired token", code="invalid_token")
    user, version, revoked_at, expires_at = row
    if (
        user.company_id != claims.company_id
        or not user.is_active
        or revoked_at is not None
        or version != user.token_version
        or expires_at <= now
    ):
        raise Unauthorized("Session is no longer valid", code="invalid_token")
    request.state.session_id = claims.session_id
    limiter.check("api", settings.rate_limit_api_user, str(user.id))
    _route_reads(request, session, user.id)
    return user


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _route_reads(request: Request, session: Session, principal: uuid.UUID) -> None:
    """With a read replica: whether this request's `ReadSession` may be the replica's (a read
    by a caller who has not written lately), or, for a write, pin the caller to the primary
    once it commits (core/replica.py)."""
    replica: ReadReplica | None = request.app.state.read_replica
    if replica is None:
        return
    if request.method in _SAFE_METHODS:
        # Whether the caller wrote lately is asked of the shared cache only where the answer
        # matters: a route that reads through the replica.
        if _reads_replica(request.scope.get("route")):
            request.state.read_replica = replica.routes_to_replica(principal)
    else:
        event.listen(session, "after_commit", lambda _s: replica.pin(principal), once=True)


def _reads_replica(route: object) -> bool:
    """Whether a route takes `ReadSession` or `ReadSessions` (worked out once per route)."""
    known: bool | None = getattr(route, "_reads_replica", None)
    if known is None:
        known = _needs(getattr(route, "dependant", None), {get_read_session, get_read_sessions})
        # Any thread may store it first: they all store the same answer.
        setattr(route, "_reads_replica", known)  # noqa: B010
    return known


def _needs(dependant: Dependant | None, calls: set[object]) -> bool:
    if dependant is None:
        return False
    return any(d.call in calls or _needs(d, calls) for d in dependant.dependencies)


def _api_key_principal(
    request: Request,
    session: Session,
    token: str,
    limiter: RateLimiter,
    settings: Settings,
    now: datetime,
) -> User:
    """An API key acts as its company: a User that exists for this request only (never
    stored), with an admin's reach, gated by the key's scopes per route
    (`apikeys.scopes.ROUTES`) before any route code runs. Its id is the key's, so it is never
    anyone's "self", and the audit log names it `api_key:<id>`."""
    key = apikeys_service.authenticate(session, token, now=now)
    if key is None:
        raise Unauthorized("Invalid, revoked or expired API key", code="invalid_api_key")
    route = request.scope.get("route")
    method = "GET" if request.method == "HEAD" else request.method
    where = (method, getattr(route, "path", ""))
    if where not in API_KEY_ROUTES:
        raise Forbidden("API keys may not call this route", code="api_key_not_allowed")
    needed = API_KEY_ROUTES[where]
    if needed is not None and needed.value not in key.scopes:
        raise Forbidden(f"This API key lacks the {needed.value} scope", code="insufficient_scope")
    limiter.check("api_key", settings.rate_limit_api_key, str(key.id))
    audit.label_actor(session, key.id, f"api_key:{key.id}")
    _route_reads(request, session, key.id)
    return User(
        id=key.id,
        company_id=key.company_id,
        email=f"{key.prefix}@api-key.invalid",
        full_name=key.name,
        role=Role.admin,
        is_active=True,
        manager_id=None,
        token_version=0,
    )


# The dependencies of every router whose routes need a signed-in caller (`main.USER_ROUTERS`,
# checked when the app is built): each of its routes refuses a request without a live session
# or API key before anything else runs, whether or not the route asks for the user.
SIGNED_IN: Final[Sequence[params.Depends]] = (Depends(get_current_user),)


async def signed_in_user(request: Request) -> User:
    """The caller `SIGNED_IN` found, for a route (or a dependency) that needs them.

    Not `Depends(get_current_user)` a second time: FastAPI walks a dependency's whole tree (its
    seven parameters) again before it finds the value in its cache, on every request. Only
    routes under `SIGNED_IN` may ask (`main` checks every route when the app is built), so the
    caller is always known here."""
    user: User | None = getattr(request.state, "user", None)
    if user is None:
        raise RuntimeError(f"{request.scope.get('route')}: CurrentUser without SIGNED_IN")
    return user


CurrentUser = Annotated[User, Depends(signed_in_user)]


def asks_for_caller(dependant: Dependant) -> bool:
    """Whether a route (its dependant) takes `CurrentUser`, itself or through a dependency."""
    return _needs(dependant, {signed_in_user})


async def get_read_session(request: Request, user: CurrentUser, session: SessionDep) -> Session:
    """Where a list, report or feed reads: the read replica when one is configured, healthy and
    the caller has not written lately (decided by `get_current_user`), else the request's own
    transaction. No I/O here: opening a session sends nothing."""
    if getattr(request.state, "read_replica", False):
        return use_replica(session, request.app.state.read_replica.sessions)
    return session


async def get_read_sessions(request: Request, user: CurrentUser) -> sessionmaker[Session]:
    """Sessions for a read that outlives the route (a streamed export), on the same database
    `get_read_session` would pick."""
    if getattr(request.state, "read_replica", False):
        sessions: sessionmaker[Session] = request.app.state.read_replica.sessions
        return sessions
    primary: sessionmaker[Session] = request.app.state.session_factory
    return primary


ReadSession = Annotated[Session, Depends(get_read_session)]
ReadSessions = Annotated[sessionmaker[Session], Depends(get_read_sessions)]


def require(capability: Capability) -> Callable[[User], Awaitable[User]]:
    # async: a check this small is not worth a hop to the thread pool.
    async def _check(user: CurrentUser) -> User:
        if not can(user.role, capability):
            raise Forbidden("Insufficient permissions", code="insufficient_permissions")
        return user

    return _check


AdminUser = Annotated[User, Depends(require(Capability.administer))]
FinanceUser = Annotated[User, Depends(require(Capability.read_company_spends))]
CardManager = Annotated[User, Depends(require(Capability.manage_cards))]
