"""Sign-in through a company's OpenID Connect provider (Okta, Entra ID, Google, Auth0, Keycloak).

The authorization code flow with PKCE, state and nonce: `start` keeps a one-time login (state
hashed, nonce, code verifier) and sends the browser to the provider; `callback` spends that login
once, trades the code for tokens with Authlib's OAuth 2 client, and validates the ID token with
joserfc against the provider's published keys (signature, issuer, audience, expiry, nonce). The
person is found by verified email within the company (or created when the company allows it),
and gets the same token pair as a password login, or a one-time code for a front end.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.fernet import Fernet, InvalidToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.auth import flows as auth_flows
from spendtrackr.apps.auth.models import SsoConfig, SsoLogin
from spendtrackr.apps.auth.schemas import SsoConfigRead, SsoConfigWrite, TokenPair
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import Role, User
from spendtrackr.core.db import utcnow
from spendtrackr.core.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)

LOGIN_TTL = timedelta(minutes=10)
EXCHANGE_TTL = timedelta(minutes=2)
CACHE_SECONDS = 3600
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
LEEWAY_SECONDS = 60


class ProviderUnreachable(AppError):
    status_code = 502
    code = "sso_provider_unavailable"


@dataclass(frozen=True, slots=True)
class Provider:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


_discovered: dict[str, tuple[float, Provider]] = {}
_keys: dict[str, tuple[float, dict[str, Any]]] = {}


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=10.0, follow_redirects=False)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise ProviderUnreachable(f"The identity provider did not answer {url}: {exc}") from None
    if not isinstance(body, dict):
        raise ProviderUnreachable(f"The identity provider's {url} is not a JSON object")
    return body


def discover(issuer: str, *, fresh: bool = False) -> Provider:
    """The provider's endpoints from its discovery document (cached an hour)."""
    cached = _discovered.get(issuer)
    if cached is not None and not fresh and cached[0] > time.monotonic():
        return cached[1]
    doc = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if doc.get("issuer") != issuer:
        raise ProviderUnreachable(
            f"The discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}"
        )
    try:
        provider = Provider(
            authorization_endpoint=str(doc["authorization_endpoint"]),
            token_endpoint=str(doc["token_endpoint"]),
            jwks_uri=str(doc["jwks_uri"]),
        )
    except KeyError as exc:
        raise ProviderUnreachable(f"The discovery document has no {exc}") from None
    _discovered[issuer] = (time.monotonic() + CACHE_SECONDS, provider)
    return provider


def key_set(provider: Provider, *, fresh: bool = False) -> KeySet:
    cached = _keys.get(provider.jwks_uri)
    if cached is None or fresh or cached[0] <= time.monotonic():
        cached = (time.monotonic() + CACHE_SECONDS, _get_json(provider.jwks_uri))
        _keys[provider.jwks_uri] = cached
    return KeySet.import_key_set(cached[1])  # type: ignore[arg-type]


def validate_id_token(
    id_token: str, *, issuer: str, client_id: str, nonce: str, keys: KeySet, now: int | None = None
) -> dict[str, Any]:
    """The ID token's claims once its signature (by one of `keys`), issuer, audience, expiry,
    issue time and nonce are right; 401 `invalid_id_token` otherwise."""
    try:
        token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
        jwt.JWTClaimsRegistry(
            now=now,
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise InvalidIdToken(f"The ID token was refused: {exc}") from None
    claims = dict(token.claims)
    azp = claims.get("azp")
    if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1 and azp != client_id:
        raise InvalidIdToken("The ID token was issued to another party (azp)")
    return claims


class InvalidIdToken(AppError):
    status_code = 401
    code = "invalid_id_token"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _seal(key: bytes, value: str) -> str:
    return Fernet(key).encrypt(value.encode()).decode()


def _unseal(key: bytes, value: str) -> str:
    try:
        return Fernet(key).decrypt(value.encode()).decode()
    except InvalidToken:
        raise Forbidden(
            "The SSO client secret cannot be read with this server's key: an admin must set it "
            "again",
            code="sso_misconfigured",
        ) from None


def redirect_uri(public_url: str) -> str:
    return public_url.rstrip("/") + "/auth/sso/callback"


# --- configuration ----------------------------------------------------------------------------


def put_config(session: Session, *, actor: User, body: SsoConfigWrite, key: bytes) -> SsoConfigRead:
    """Set the company's provider (admins). The discovery document is fetched now, so a wrong
    issuer is a 422 `invalid_issuer` here rather than a failure at everyone's first sign-in."""
    try:
        discover(body.issuer, fresh=True)
    except ProviderUnreachable as exc:
        raise ValidationFailed(str(exc), code="invalid_issuer") from None
    config = session.get(SsoConfig, actor.company_id, with_for_update=True)
    if config is None:
        if body.client_secret is None:
            raise ValidationFailed("client_secret is required", code="client_secret_required")
        config = SsoConfig(company_id=actor.company_id)
        session.add(config)
    config.issuer = body.issuer
    config.client_id = body.client_id
    if body.client_secret is not None:
        config.client_secret_enc = _seal(key, body.client_secret)
    config.allowed_domains = sorted({d.lower() for d in body.allowed_domains})
    config.default_role = body.default_role.value
    config.sso_required = body.sso_required
    config.create_users = body.create_users
    config.frontend_url = body.frontend_url
    session.flush()
    company = companies_service.get_company_or_404(session, actor.company_id)
    audit.record_change(
        session,
        company,
        "sso.configured",
        actor_id=actor.id,
        metadata={
            "issuer": config.issuer,
            "client_id": config.client_id,
            "allowed_domains": config.allowed_domains,
            "sso_required": config.sso_required,
            "create_users": config.create_users,
        },
    )
    return read_config(config)


def read_config(config: SsoConfig) -> SsoConfigRead:
    return SsoConfigRead(
        issuer=config.issuer,
        client_id=config.client_id,
        allowed_domains=config.allowed_domains,
        default_role=Role(config.default_role),
        sso_required=config.sso_required,
        create_users=config.create_users,
        frontend_url=config.frontend_url,
        updated_at=config.updated_at,
    )


def get_config(session: Session, *, actor: User) -> SsoConfigRead:
    config = session.get(SsoConfig, actor.company_id)
    if config is None:
        raise NotFound("Single sign-on is not set up", code="sso_not_configured")
    return read_config(config)


# --- the flow -----------------------------------------------------------------------------------


def _config_for(session: Session, company: str) -> SsoConfig:
    """The config of `company`: a company id, or an email. An email picks the company where it
    has an account and SSO is set up; else the one company that allows its domain (when several
    do, the person must name theirs: 409 `company_required`)."""
    config: SsoConfig | None = None
    if "@" in company:
        accounts = users_service.accounts_for_email(session, company)
        configs = [
            c
            for c in (session.get(SsoConfig, account.company_id) for account in accounts)
            if c is not None
        ]
        if not configs:
            domain = company.rsplit("@", 1)[1].lower()
            configs = [c for c in session.scalars(select(SsoConfig)) if domain in c.allowed_domains]
        if len(configs) > 1:
            raise Conflict(
                "Several companies sign in with this email; start with your company's id",
                code="company_required",
            )
        config = configs[0] if configs else None
    else:
        try:
            config = session.get(SsoConfig, uuid.UUID(company))
        except ValueError:
            config = None
    if config is None:
        raise NotFound("No company signs in with this", code="sso_not_configured")
    return config


def start(session: Session, *, company: str, public_url: str, key: bytes) -> str:
    """Where to send the browser: the provider's authorization endpoint, with a fresh state,
    nonce and PKCE challenge kept for the callback."""
    config = _config_for(session, company)
    provider = discover(config.issuer)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    session.add(
        SsoLogin(
            state_hash=_hash(state),
            company_id=config.company_id,
            nonce=nonce,
            code_verifier=verifier,
            created_at=utcnow(),
        )
    )
    return str(
        prepare_grant_uri(
            provider.authorization_endpoint,
            client_id=config.client_id,
            response_type="code",
            redirect_uri=redirect_uri(public_url),
            scope="openid email profile",
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
    )


@dataclass(frozen=True, slots=True)
class Signed:
    tokens: TokenPair | None  # for an API client
    frontend_redirect: str | None  # or, for a front end: where to send the browser


def callback(
    session: Session,
    ctx: auth_flows.AuthContext,
    *,
    state: str,
    code: str | None,
    error: str | None,
    key: bytes,
    now: datetime,
) -> Signed:
    """Finish a sign-in: the login is spent (a replayed state or code gets 400 `invalid_state`),
    the code traded, the ID token validated, the person found or created."""
    login = session.get(SsoLogin, _hash(state), with_for_update=True)
    if login is None or login.used_at is not None or login.created_at < now - LOGIN_TTL:
        raise BadRequest(
            "This sign-in is unknown, used or expired: start again", code="invalid_state"
        )
    login.used_at = now
    session.flush()
    if error is not None or code is None:
        raise BadRequest(f"The identity provider refused: {error or 'no code'}", code="sso_denied")
    config = session.get(SsoConfig, login.company_id)
    if config is None:
        raise NotFound("Single sign-on is not set up", code="sso_not_configured")
    provider = discover(config.issuer)
    token = _trade(config, provider, code, login.code_verifier, ctx.settings.public_url, key)
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise InvalidIdToken("The identity provider sent no ID token")
    try:
        claims = validate_id_token(
            id_token,
            issuer=config.issuer,
            client_id=config.client_id,
            nonce=login.nonce,
            keys=key_set(provider),
        )
    except InvalidIdToken:
        # A key rotated since the set was cached: read it once more.
        claims = validate_id_token(
            id_token,
            issuer=config.issuer,
            client_id=config.client_id,
            nonce=login.nonce,
            keys=key_set(provider, fresh=True),
        )
    user = _person(session, config, claims)
    audit.record_change(
        session, user, "auth.sso_login", actor_id=user.id, metadata={"issuer": config.issuer}
    )
    tokens = auth_flows.new_session(session, ctx, user)
    if config.frontend_url is None:
        return Signed(tokens=tokens, frontend_redirect=None)
    exchange = secrets.token_urlsafe(32)
    login.exchange_hash = _hash(exchange)
    login.user_id = user.id
    return Signed(tokens=None, frontend_redirect=f"{config.frontend_url}?code={exchange}")


def _trade(
    config: SsoConfig, provider: Provider, code: str, verifier: str, public_url: str, key: bytes
) -> dict[str, Any]:
    """The authorization code traded at the token endpoint (client_secret_basic, with the PKCE
    verifier); 400 `sso_code_refused` when the provider refuses (a replayed code, say)."""
    body = prepare_token_request(
        "authorization_code",
        code=code,
        redirect_uri=redirect_uri(public_url),
        code_verifier=verifier,
    )
    try:
        response = httpx.post(
            provider.token_endpoint,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=(config.client_id, _unseal(key, config.client_secret_enc)),
            timeout=10.0,
        )
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnreachable(f"The identity provider's token endpoint failed: {exc}") from None
    if response.status_code != 200 or not isinstance(answer, dict):
        reason = answer.get("error") if isinstance(answer, dict) else response.status_code
        raise BadRequest(
            f"The identity provider would not trade the code: {reason}", code="sso_code_refused"
        )
    return answer


def _person(session: Session, config: SsoConfig, claims: dict[str, Any]) -> User:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise Forbidden("The identity provider gave no email", code="sso_no_email")
    if claims.get("email_verified") is not True:
        raise Forbidden(
            "The identity provider has not verified this email", code="email_unverified"
        )
    domain = email.rsplit("@", 1)[1].lower()
    if domain not in config.allowed_domains:
        raise Forbidden(f"{domain} is not one of the company's domains", code="domain_not_allowed")
    found = users_service.accounts_for_email(session, email, company_id=config.company_id)
    if found:
        user = found[0]
        if not user.is_active:
            raise Forbidden("This account is deactivated", code="account_disabled")
        return user
    if not config.create_users:
        raise Forbidden("There is no account for this email in the company", code="sso_no_account")
    name = claims.get("name")
    return users_service.create_user(
        session,
        company_id=config.company_id,
        actor_id=None,
        email=email,
        full_name=name if isinstance(name, str) and name else email.split("@")[0],
        role=Role(config.default_role),
        password_hash=None,
        context={"via": "sso"},
    )


def exchange(
    session: Session, ctx: auth_flows.AuthContext, *, code: str, now: datetime
) -> TokenPair:
    """Trade a front end's one-time code for the token pair of the sign-in it came from."""
    login = session.scalars(
        select(SsoLogin).where(SsoLogin.exchange_hash == _hash(code)).with_for_update()
    ).one_or_none()
    if (
        login is None
        or login.exchanged_at is not None
        or login.user_id is None
        or (login.used_at or now) < now - EXCHANGE_TTL
    ):
        raise BadRequest("This code is unknown, used or expired", code="invalid_code")
    login.exchanged_at = now
    user = session.get(User, login.user_id)
    assert user is not None
    return auth_flows.new_session(session, ctx, user)
