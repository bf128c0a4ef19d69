"""The web app's cookie session: the API's own session (`POST /auth/login`) kept in cookies.

`st_session` names the API session (its id, user and company, signed, for as long as the API
session lives); `st_access` carries a short-lived access token for it, minted again here when it
nears its expiry. Every page calls the API with that token, so the API's session check decides
on every request: a logout, a password change or a deactivation ends the web session at once.
Minting instead of rotating the refresh token lets a page and its background requests renew at
the same moment without tripping the refresh token's reuse detection.

CSRF: every form carries a token that is an HMAC of the API session's id, or, before sign-in,
of a random `st_csrf` cookie (a signed double submit). The cookies are SameSite=Lax and
HttpOnly, and the Origin header, when sent, must be ours.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from fastapi import Request
from starlette.responses import Response

from spendtrackr.core.config import Settings
from spendtrackr.core.errors import Forbidden
from spendtrackr.core.security import InvalidToken, Tokens

SESSION_COOKIE = "st_session"
ACCESS_COOKIE = "st_access"
REFRESH_COOKIE = "st_refresh"  # only sent to sign-out, which hands it to `POST /auth/logout`
NONCE_COOKIE = "st_csrf"
CSRF_FIELD = "csrf"
_AUDIENCE = "spendtrackr-web"
_RENEW_BEFORE = 60  # seconds: an access token this close to its expiry is replaced


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who the cookies say is signed in; the API decides whether that session still holds."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    company_id: uuid.UUID
    role: str
    expires: int


def _key(settings: Settings, purpose: bytes) -> bytes:
    return hmac.new(
        settings.jwt_secret.get_secret_value().encode(), purpose, hashlib.sha256
    ).digest()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _set(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/app",
) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        secure=_secure(request),
        samesite="lax",
        path=path,
        max_age=max_age,
    )


def viewer(request: Request) -> Viewer | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    settings: Settings = request.app.state.settings
    try:
        claims = jwt.decode(
            raw,
            _key(settings, b"spendtrackr web session"),
            algorithms=["HS256"],
            audience=_AUDIENCE,
            options={"require": ["exp", "sid", "sub", "cid", "role"]},
        )
        return Viewer(
            session_id=uuid.UUID(claims["sid"]),
            user_id=uuid.UUID(claims["sub"]),
            company_id=uuid.UUID(claims["cid"]),
            role=str(claims["role"]),
            expires=int(claims["exp"]),
        )
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


def start(request: Request, response: Response, access_token: str, refresh_token: str) -> None:
    """Sign the browser in to the API session the token pair belongs to."""
    settings: Settings = request.app.state.settings
    tokens: Tokens = request.app.state.tokens
    claims = tokens.verify_access(access_token)
    lifetime = int(timedelta(days=settings.refresh_token_days).total_seconds())
    expires = int(time.time()) + lifetime
    signed = jwt.encode(
        {
            "sid": str(claims.session_id),
            "sub": str(claims.user_id),
            "cid": str(claims.company_id),
            "role": claims.role,
            "exp": expires,
            "aud": _AUDIENCE,
        },
        _key(settings, b"spendtrackr web session"),
        algorithm="HS256",
    )
    _set(request, response, SESSION_COOKIE, signed, max_age=lifetime)
    _set(request, response, ACCESS_COOKIE, access_token, max_age=lifetime)
    _set(request, response, REFRESH_COOKIE, refresh_token, max_age=lifetime, path="/app/logout")


def end(request: Request, response: Response) -> None:
    for name, path in (
        (SESSION_COOKIE, "/app"),
        (ACCESS_COOKIE, "/app"),
        (REFRESH_COOKIE, "/app/logout"),
    ):
        response.delete_cookie(name, path=path, secure=_secure(request), httponly=True)


def access_token(request: Request, who: Viewer) -> tuple[str, bool]:
    """The access token to call the API with, and whether it is new (to be stored)."""
    tokens: Tokens = request.app.state.tokens
    current = request.cookies.get(ACCESS_COOKIE)
    if current:
        try:
            claims = tokens.verify_access(current)
            if claims.session_id == who.session_id and _lasts(current, _RENEW_BEFORE):
                return current, False
        except InvalidToken:
            pass
    minted = tokens.issue_access(
        user_id=who.user_id,
        company_id=who.company_id,
        session_id=who.session_id,
        role=who.role,
        now=datetime.now(UTC),
    )
    return minted, True


def keep_access(request: Request, response: Response, token: str, who: Viewer) -> None:
    _set(request, response, ACCESS_COOKIE, token, max_age=max(0, who.expires - int(time.time())))


def _lasts(token: str, seconds: int) -> bool:
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
    return bool(exp - time.time() > seconds)


# --- CSRF -------------------------------------------------------------------------------


def _binding(request: Request) -> str | None:
    who = viewer(request)
    if who is not None:
        return f"session:{who.session_id}"
    nonce = request.cookies.get(NONCE_COOKIE)
    return f"nonce:{nonce}" if nonce else None


def csrf_token(request: Request) -> str:
    """The token this browser's forms carry. Before sign-in it is bound to a random cookie,
    made here when missing (`keep_nonce` sets it on the response)."""
    binding = _binding(request)
    if binding is None:
        nonce = secrets.token_urlsafe(24)
        request.state.csrf_nonce = nonce
        binding = f"nonce:{nonce}"
    settings: Settings = request.app.state.settings
    return hmac.new(
        _key(settings, b"spendtrackr csrf"), binding.encode(), hashlib.sha256
    ).hexdigest()


def keep_nonce(request: Request, response: Response) -> None:
    nonce = getattr(request.state, "csrf_nonce", None)
    if nonce:
        _set(request, response, NONCE_COOKIE, nonce, max_age=60 * 60 * 24)


def check_csrf(request: Request, sent: str | None) -> None:
    """403 `csrf_failed` unless the request carries this browser's token and, when the browser
    says where it comes from, comes from here."""
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        raise Forbidden("This form was sent from another site", code="csrf_failed")
    binding = _binding(request)
    if not sent or binding is None:
        raise Forbidden("The form expired; reload the page and try again", code="csrf_failed")
    if not hmac.compare_digest(sent, csrf_token(request)):
        raise Forbidden("The form expired; reload the page and try again", code="csrf_failed")
