from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import EmailStr, Field, StrictBool

from spendtrackr.apps.companies.schemas import CompanyRead
from spendtrackr.apps.users.models import Role
from spendtrackr.apps.users.schemas import MeUpdate, UserRead
from spendtrackr.core.currency import CurrencyCode
from spendtrackr.core.schemas import Name, Password, Schema, WriteSchema


class SignupRequest(WriteSchema):
    company_name: Name
    email: EmailStr
    password: Password
    full_name: Name
    base_currency: CurrencyCode = "USD"
    starter_workspace: StrictBool = Field(
        default=True,
        description="Start with ten categories with GL codes and an inactive example policy "
        "(`false`: an empty company)",
    )


class LoginRequest(WriteSchema):
    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)
    company: uuid.UUID | None = Field(
        default=None,
        description="The company to log in to, for a person with accounts in several (a 409 "
        "`company_required` lists the ones this password opens)",
    )


class RefreshRequest(WriteSchema):
    refresh_token: str = Field(min_length=1, max_length=512)


class AcceptInviteRequest(WriteSchema):
    token: str = Field(min_length=1, max_length=512)
    password: Password


class TokenPair(Schema):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class SignupResult(TokenPair):
    company: CompanyRead
    user: UserRead


# `/users/me` reads and edits the caller with the users domain's own shapes.
__all__ = [
    "AcceptInviteRequest",
    "LoginRequest",
    "MeUpdate",
    "RefreshRequest",
    "SignupRequest",
    "SignupResult",
    "TokenPair",
    "UserRead",
]


class SsoConfigWrite(WriteSchema):
    issuer: Annotated[
        str,
        Field(
            pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?$", max_length=500
        ),
    ] = Field(
        description="The provider's issuer URL (its discovery document is read from "
        "`<issuer>/.well-known/openid-configuration`)"
    )
    client_id: Annotated[str, Field(min_length=1, max_length=255)]
    client_secret: Annotated[str, Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="Kept encrypted, never shown; leave out to keep the current one"
    )
    allowed_domains: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")]],
        Field(min_length=1, max_length=50),
    ]
    default_role: Role = Field(
        default=Role.employee, description="The role of a person created at first sign-in"
    )
    sso_required: bool = Field(
        default=False, description="true: no password login for anyone but admins"
    )
    create_users: bool = Field(
        default=False, description="true: a person of an allowed domain without an account gets one"
    )
    frontend_url: (
        Annotated[
            str,
            Field(
                pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?$",
                max_length=500,
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Send the browser there with a one-time `code` (for POST "
        "/auth/sso/exchange) instead of answering the callback with tokens",
    )


class SsoConfigRead(Schema):
    issuer: str
    client_id: str
    allowed_domains: list[str]
    default_role: Role
    sso_required: bool
    create_users: bool
    frontend_url: str | None
    updated_at: datetime


class SsoExchange(WriteSchema):
    code: Annotated[str, Field(min_length=1, max_length=200)]
