"""Sign-up, login (JSON and OAuth2 form), refresh, logout, invites, and the caller's profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from spendtrackr.apps.auth import flows
from spendtrackr.apps.auth.schemas import (
    AcceptInviteRequest,
    LoginRequest,
    RefreshRequest,
    SignupRequest,
    SignupResult,
    TokenPair,
)
from spendtrackr.apps.users.deps import CurrentUser
from spendtrackr.apps.users.schemas import MeUpdate, UserRead
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.ratelimit import RateLimiter
from spendtrackr.core.routing import JSONRoute

public = APIRouter(route_class=JSONRoute, prefix="/auth", tags=["auth"])
me = APIRouter(route_class=JSONRoute, tags=["auth"], responses=errors(401))


async def auth_context(request: Request) -> flows.AuthContext:
    state = request.app.state
    return flows.AuthContext(
        settings=state.settings, passwords=state.passwords, tokens=state.tokens
    )


AuthCtx = Annotated[flows.AuthContext, Depends(auth_context)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit_login(request: Request, email: str) -> None:
    limiter: RateLimiter = request.app.state.limiter
    settings = request.app.state.settings
    limiter.check("login-ip", settings.rate_limit_login_ip, _client_ip(request))
    limiter.check("login-email", settings.rate_limit_login_email, email.strip().lower())


@public.post(
    "/signup", response_model=SignupResult, status_code=201, responses=errors(409, 422, 429)
)
def signup(
    body: SignupRequest, request: Request, session: SessionDep, ctx: AuthCtx
) -> SignupResult:
    """Create a company and its first admin, and log that admin in."""
    limiter: RateLimiter = request.app.state.limiter
    limiter.check("signup-ip", ctx.settings.rate_limit_signup_ip, _client_ip(request))
    return flows.signup(session, ctx, body)


@public.post("/login", response_model=TokenPair, responses=errors(401, 422, 429))
def login(body: LoginRequest, request: Request, session: SessionDep, ctx: AuthCtx) -> TokenPair:
    """Exchange email and password for an access token (short-lived) and a refresh token."""
    _limit_login(request, body.email)
    return flows.login(session, ctx, email=body.email, password=body.password)


@public.post("/token", response_model=TokenPair, responses=errors(401, 422, 429))
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    ctx: AuthCtx,
) -> TokenPair:
    """OAuth2 password flow (form fields `username`, `password`), for Swagger UI's Authorize."""
    _limit_login(request, form.username)
    return flows.login(session, ctx, email=form.username, password=form.password)


@public.post("/refresh", response_model=TokenPair, responses=errors(401, 422))
def refresh(body: RefreshRequest, session: SessionDep, ctx: AuthCtx) -> TokenPair:
    """Rotate: the refresh token is spent and a new pair returned. Presenting a spent token again
    revokes its whole session (401 `refresh_token_reused`)."""
    return flows.refresh(session, ctx, token=body.refresh_token)


@public.post("/logout", status_code=204, response_class=Response, responses=errors(422))
def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """Revoke the session of this refresh token, with every token issued in it."""
    flows.logout(session, token=body.refresh_token)
    return Response(status_code=204)


@public.post("/accept-invite", response_model=TokenPair, responses=errors(404, 422))
def accept_invite(body: AcceptInviteRequest, session: SessionDep, ctx: AuthCtx) -> TokenPair:
    """Set the password of an invited user (one-time token) and log them in."""
    return flows.accept_invite(session, ctx, token=body.token, password=body.password)


@me.get("/auth/me", response_model=UserRead)
@me.get("/users/me", response_model=UserRead)
def read_me(session: SessionDep, user: CurrentUser) -> UserRead:
    """The caller."""
    return flows.read_me(session, user)


@me.patch("/users/me", response_model=UserRead, responses=errors(400, 422))
def update_me(
    body: MeUpdate, request: Request, session: SessionDep, user: CurrentUser, ctx: AuthCtx
) -> UserRead:
    """Change your name, or your password (with `current_password`; other sessions are revoked)."""
    return flows.update_me(session, ctx, user=user, session_id=request.state.session_id, body=body)
