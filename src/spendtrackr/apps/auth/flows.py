"""Sign-up, login, token rotation, invites and the caller's own profile."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.auth import service as auth_service
from spendtrackr.apps.auth.models import SsoConfig
from spendtrackr.apps.auth.schemas import SignupRequest, SignupResult, TokenPair
from spendtrackr.apps.companies import flows as companies_flows
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.companies.schemas import CompanyRead
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import AuthSession, Role, User
from spendtrackr.apps.users.schemas import MeUpdate, UserRead
from spendtrackr.core.config import Settings
from spendtrackr.core.db import utcnow
from spendtrackr.core.errors import BadRequest, Conflict, Forbidden, Unauthorized
from spendtrackr.core.security import Passwords, Tokens


@dataclass(frozen=True, slots=True)
class AuthContext:
    settings: Settings
    passwords: Passwords
    tokens: Tokens


def _tokens_for(
    session: Session, ctx: AuthContext, user: User, auth_session: AuthSession
) -> TokenPair:
    refresh = auth_service.issue_refresh_token(session, session_id=auth_session.id)
    access = ctx.tokens.issue_access(
        user_id=user.id,
        company_id=user.company_id,
        session_id=auth_session.id,
        role=user.role,
        now=utcnow(),
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(ctx.tokens.access_ttl.total_seconds()),
    )


def new_session(session: Session, ctx: AuthContext, user: User) -> TokenPair:
    auth_session = users_service.start_session(
        session, user=user, ttl=timedelta(days=ctx.settings.refresh_token_days)
    )
    return _tokens_for(session, ctx, user, auth_session)


def create_company_with_admin(
    session: Session,
    passwords: Passwords,
    *,
    company_name: str,
    base_currency: str,
    email: str,
    full_name: str,
    password: str,
    starter_workspace: bool,
) -> tuple[Company, User]:
    """A new tenant and its first admin (sign-up, and `spendtrackr create-superuser`), with the
    starter workspace unless asked not to."""
    company = companies_service.create_company(
        session, name=company_name, base_currency=base_currency
    )
    audit.record_change(
        session,
        company,
        "company.created",
        actor_id=None,
        metadata={"name": company.name, "base_currency": company.base_currency},
    )
    user = users_service.create_user(
        session,
        company_id=company.id,
        actor_id=None,
        email=email,
        full_name=full_name,
        role=Role.admin,
        password_hash=passwords.hash(password, email=email),
    )
    if starter_workspace:
        companies_flows.create_starter_workspace(session, company_id=company.id, actor_id=user.id)
    return company, user


def signup(session: Session, ctx: AuthContext, body: SignupRequest) -> SignupResult:
    company, user = create_company_with_admin(
        session,
        ctx.passwords,
        company_name=body.company_name,
        base_currency=body.base_currency,
        email=body.email,
        full_name=body.full_name,
        password=body.password,
        starter_workspace=body.starter_workspace,
    )
    tokens = new_session(session, ctx, user)
    return SignupResult(
        **tokens.model_dump(),
        company=CompanyRead.model_validate(company),
        user=users_service.to_read(session, [user])[0],
    )


INVALID_CREDENTIALS = "Invalid email or password"


def login(
    session: Session,
    ctx: AuthContext,
    *,
    email: str,
    password: str,
    company_id: uuid.UUID | None = None,
) -> TokenPair:
    """Log in to the one account of this email whose password matches (`company_id` picks one
    when the person has several). Same answer for an unknown email and a wrong password; when
    several companies' accounts match, 409 `company_required` lists only those, so nothing is
    said about accounts whose password the caller does not know."""
    accounts = users_service.accounts_for_email(session, email, company_id=company_id)
    # One hash, whether the email has no account, one, or several (core/security.py).
    answers = ctx.passwords.check(password, email=email, hashes=[u.password_hash for u in accounts])
    if not accounts:
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    matched = []
    for user, answer in zip(accounts, answers, strict=True):
        if answer.matches:
            matched.append(user)
            if answer.rehashed is not None:
                user.password_hash = answer.rehashed
    if not matched:
        for user in accounts:
            audit.record_change(session, user, "auth.login_failed", actor_id=user.id)
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials", keep_writes=True)
    active = [u for u in matched if u.is_active]
    if not active:
        raise Unauthorized("This account is deactivated", code="account_disabled", keep_writes=True)
    if len(active) > 1:
        names = companies_service.names(session, ids=[u.company_id for u in active])
        raise Conflict(
            "This email and password open accounts in several companies: send `company` "
            "(one of the ids listed) to choose",
            code="company_required",
            keep_writes=True,  # hashes replaced above stay replaced
            extra={
                "companies": [
                    {"id": str(u.company_id), "name": names[u.company_id]} for u in active
                ]
            },
        )
    user = active[0]
    if not password_allowed(session, user):
        raise Forbidden(
            "This company signs in through its identity provider: use /auth/sso/start",
            code="sso_required",
        )
    audit.record_change(session, user, "auth.login_succeeded", actor_id=user.id)
    return new_session(session, ctx, user)


def password_allowed(session: Session, user: User) -> bool:
    """Whether this user may log in with a password: admins always may (the way back in when
    the provider is down); others unless the company requires SSO."""
    if user.role is Role.admin:
        return True
    config = session.get(SsoConfig, user.company_id)
    return config is None or not config.sso_required


def refresh(session: Session, ctx: AuthContext, *, token: str) -> TokenPair:
    invalid = Unauthorized("Invalid or expired refresh token", code="invalid_refresh_token")
    spent = auth_service.spend_refresh_token(session, token=token)
    if spent is None:
        raise invalid
    auth_session = session.get(AuthSession, spent.session_id)
    if auth_session is None:
        raise invalid
    if spent.reused:
        # A spent token came back: someone holds a copy. Kill the whole family (the legitimate
        # client logs in again) and keep that revocation although the request fails.
        if auth_session.revoked_at is None:
            users_service.revoke_session(session, session_id=auth_session.id)
            audit.record_change(
                session, auth_session, "auth.refresh_token_reused", actor_id=auth_session.user_id
            )
        raise Unauthorized(
            "Refresh token already used; the session has been revoked",
            code="refresh_token_reused",
            keep_writes=True,
        )
    user = session.get(User, auth_session.user_id)
    if (
        user is None
        or not user.is_active
        or auth_session.revoked_at is not None
        or auth_session.expires_at <= utcnow()
        or auth_session.token_version != user.token_version
    ):
        raise invalid
    return _tokens_for(session, ctx, user, auth_session)


def logout(session: Session, *, token: str) -> None:
    session_id = auth_service.session_of(session, token=token)
    if session_id is None:
        return  # nothing to revoke; answering the same either way leaks nothing
    auth_session = session.get(AuthSession, session_id)
    if auth_session is None or auth_session.revoked_at is not None:
        return
    users_service.revoke_session(session, session_id=session_id)
    audit.record(
        session,
        company_id=auth_session.company_id,
        actor_id=auth_session.user_id,
        action="auth.logout",
        entity_type="auth_session",
        entity_id=session_id,
    )


def accept_invite(session: Session, ctx: AuthContext, *, token: str, password: str) -> TokenPair:
    user = users_service.consume_invite(
        session, token=token, hash_password=lambda email: ctx.passwords.hash(password, email=email)
    )
    return new_session(session, ctx, user)


def read_me(session: Session, user: User) -> UserRead:
    return users_service.to_read(session, [user])[0]


def update_me(
    session: Session, ctx: AuthContext, *, user: User, session_id: uuid.UUID, body: MeUpdate
) -> UserRead:
    body.changes()  # an empty PATCH is a 422, as on every other PATCH
    if body.new_password is not None:
        if body.current_password is None or not ctx.passwords.verify(
            body.current_password, user.password_hash, email=user.email
        ):
            raise BadRequest(
                "current_password is missing or wrong", code="invalid_current_password"
            )
        users_service.change_password(
            session,
            user=user,
            password_hash=ctx.passwords.hash(body.new_password, email=user.email),
            keep_session_id=session_id,
        )
    elif body.current_password is not None:
        raise BadRequest("current_password is only used with new_password", code="invalid_request")
    if body.full_name is not None and body.full_name != user.full_name:
        before = user.full_name
        user.full_name = body.full_name
        audit.record_change(
            session,
            user,
            "user.updated",
            actor_id=user.id,
            metadata={"changes": {"full_name": [before, user.full_name]}},
        )
    return read_me(session, user)
