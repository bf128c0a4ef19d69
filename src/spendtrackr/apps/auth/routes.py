"""Sign-up, login (JSON and OAuth2 form), refresh, logout, invites, and the caller's profile."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm

from spendtrackr.apps.auth import flows, sso
from spendtrackr.apps.auth.schemas import (
    AcceptInviteRequest,
    LoginRequest,
    MeUpdate,
    RefreshRequest,
    SignupRequest,
    SignupResult,
    SsoConfigRead,
    SsoConfigWrite,
    SsoExchange,
    TokenPair,
    UserRead,
)
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser, CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import LimiterDep, NowDep, PasswordsDep, SettingsDep, TokensDep
from spendtrackr.core.errors import Unauthorized, ValidationFailed
from spendtrackr.core.openapi import errors
from spendtrackr.core.ratelimit import RateLimiter
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.security import device_token, device_token_valid, normalize_email

public = APIRouter(route_class=JSONRoute, prefix="/auth", tags=["auth"])
me = APIRouter(dependencies=SIGNED_IN, route_class=JSONRoute, tags=["auth"], responses=errors(401))


async def auth_context(
    settings: SettingsDep, passwords: PasswordsDep, tokens: TokensDep
) -> flows.AuthContext:
    return flows.AuthContext(settings=settings, passwords=passwords, tokens=tokens)


AuthCtx = Annotated[flows.AuthContext, Depends(auth_context)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


DEVICE_COOKIE = "spendtrackr_device"
DEVICE_COOKIE_DAYS = 365


def _login(
    request: Request,
    session: SessionDep,
    ctx: flows.AuthContext,
    limiter: RateLimiter,
    *,
    email: str,
    password: str,
    company: uuid.UUID | None,
) -> Response:
    """Brute force is slowed at three levels, none of which lets a stranger lock a user out:
    every attempt per address; failures per email and address; failures per email from
    everywhere, a ceiling past which only a device that logged in to that email before (its
    signed cookie) may still try."""
    settings = ctx.settings
    ip = _client_ip(request)
    key = normalize_email(email)
    limiter.check("login-ip", settings.rate_limit_login_ip, ip)
    limiter.ensure_under("login-email-ip", settings.rate_limit_login_email_ip, key, ip)
    known = device_token_valid(settings.device_key, request.cookies.get(DEVICE_COOKIE), key)
    if not known:
        limiter.ensure_under("login-email", settings.rate_limit_login_email, key)
    try:
        tokens = flows.login(session, ctx, email=email, password=password, company_id=company)
    except Unauthorized as exc:
        if exc.code == "invalid_credentials":
            limiter.count("login-email-ip", settings.rate_limit_login_email_ip, key, ip)
            limiter.count("login-email", settings.rate_limit_login_email, key)
        raise
    response = Response(tokens.model_dump_json(), media_type="application/json")
    response.set_cookie(
        DEVICE_COOKIE,
        device_token(settings.device_key, key),
        max_age=DEVICE_COOKIE_DAYS * 24 * 3600,
        path="/auth",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )
    return response


@public.post(
    "/signup", response_model=SignupResult, status_code=201, responses=errors(409, 422, 429)
)
def signup(
    body: SignupRequest, request: Request, session: SessionDep, ctx: AuthCtx, limiter: LimiterDep
) -> SignupResult:
    """Create a company and its first admin, and log that admin in."""
    limiter.check("signup-ip", ctx.settings.rate_limit_signup_ip, _client_ip(request))
    return flows.signup(session, ctx, body)


@public.post("/login", response_model=TokenPair, responses=errors(401, 409, 422, 429))
def login(
    body: LoginRequest, request: Request, session: SessionDep, ctx: AuthCtx, limiter: LimiterDep
) -> Response:
    """Exchange email and password for an access token (short-lived) and a refresh token. A
    person with accounts in several companies sends `company` too; without it, 409
    `company_required` lists (`companies: [{id, name}]`) the companies this password opens.
    The `spendtrackr_device` cookie marks the device as known: while the email is under attack
    (too many failures from everywhere), only known devices may still log in."""
    return _login(
        request,
        session,
        ctx,
        limiter,
        email=body.email,
        password=body.password,
        company=body.company,
    )


@public.post("/token", response_model=TokenPair, responses=errors(401, 409, 422, 429))
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    ctx: AuthCtx,
    limiter: LimiterDep,
) -> Response:
    """OAuth2 password flow (form fields `username`, `password`), for Swagger UI's Authorize;
    `client_id` may carry the company id for a person with accounts in several."""
    try:
        company = uuid.UUID(form.client_id) if form.client_id else None
    except ValueError:
        raise ValidationFailed("client_id must be a company id", code="invalid_company") from None
    return _login(
        request, session, ctx, limiter, email=form.username, password=form.password, company=company
    )


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


# --- single sign-on -------------------------------------------------------------------------------


@me.put("/auth/sso", response_model=SsoConfigRead, responses=errors(403, 422))
def put_sso(
    body: SsoConfigWrite, session: SessionDep, actor: AdminUser, settings: SettingsDep
) -> SsoConfigRead:
    """The company's OpenID Connect provider (admins): issuer, client id and secret (kept
    encrypted), the email domains that may sign in, the role of people created at their first
    sign-in (`create_users`), `sso_required` (no password login but for admins), and a
    `frontend_url` to hand the sign-in to. Register `<PUBLIC_URL>/auth/sso/callback` as the
    redirect URI at the provider. 422 `invalid_issuer` when its discovery document cannot be
    read."""
    return sso.put_config(session, actor=actor, body=body, key=settings.sso_key)


@me.get("/auth/sso", response_model=SsoConfigRead, responses=errors(403, 404))
def get_sso(session: SessionDep, actor: AdminUser) -> SsoConfigRead:
    return sso.get_config(session, actor=actor)


@public.get(
    "/sso/start", status_code=302, response_class=RedirectResponse, responses=errors(404, 409, 502)
)
def sso_start(
    session: SessionDep,
    settings: SettingsDep,
    company: Annotated[
        str, Query(min_length=1, max_length=320, description="The company's id, or your email")
    ],
) -> RedirectResponse:
    """Start a sign-in through the company's provider: a redirect to it (authorization code with
    PKCE, state and nonce). `company` is the company's id or the person's email: the company
    where that email has an account and SSO, else the one company allowing its domain (409
    `company_required` when several do; 404 `sso_not_configured` when none)."""
    url = sso.start(session, company=company, public_url=settings.public_url, key=settings.sso_key)
    return RedirectResponse(url, status_code=302)


@public.get("/sso/callback", response_model=TokenPair, responses=errors(400, 401, 403, 404))
def sso_callback(
    session: SessionDep,
    ctx: AuthCtx,
    settings: SettingsDep,
    now: NowDep,
    state: Annotated[str, Query(min_length=1, max_length=200)],
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Where the provider sends the browser back: the same token pair as `/auth/login`, or, with
    a `frontend_url`, a redirect there carrying a one-time `code`. 400 `invalid_state` (unknown,
    used or expired), 401 `invalid_id_token`, 403 `email_unverified`, `domain_not_allowed`,
    `sso_no_account`, `account_disabled`."""
    signed = sso.callback(
        session, ctx, state=state, code=code, error=error, key=settings.sso_key, now=now
    )
    if signed.frontend_redirect is not None:
        return RedirectResponse(signed.frontend_redirect, status_code=302)
    assert signed.tokens is not None
    return Response(signed.tokens.model_dump_json(), media_type="application/json")


@public.post("/sso/exchange", response_model=TokenPair, responses=errors(400, 422))
def sso_exchange(body: SsoExchange, session: SessionDep, ctx: AuthCtx, now: NowDep) -> TokenPair:
    """Trade the one-time code a front end received for the token pair (once, within two
    minutes)."""
    return sso.exchange(session, ctx, code=body.code, now=now)
