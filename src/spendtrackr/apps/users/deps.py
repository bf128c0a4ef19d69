"""Who is calling: `CurrentUser` and capability checks for routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select

from spendtrackr.apps.users.models import AuthSession, User
from spendtrackr.apps.users.permissions import Capability, can
from spendtrackr.core.db import SessionDep, id_param, utcnow
from spendtrackr.core.deps import LimiterDep, SettingsDep, TokensDep
from spendtrackr.core.errors import Forbidden, Unauthorized
from spendtrackr.core.security import InvalidToken

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
) -> User:
    """The token's user, if the token verifies and its session is alive.

    One indexed join per request: a logout, a refresh-token reuse, a password change or a
    deactivation takes effect on the very next request, not when the access token expires.
    """
    if not token:
        raise Unauthorized("Not authenticated")
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
        or expires_at <= utcnow()
    ):
        raise Unauthorized("Session is no longer valid", code="invalid_token")
    request.state.session_id = claims.session_id
    limiter.check("api", settings.rate_limit_api_user, str(user.id))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


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
