from __future__ import annotations

import uuid

from pydantic import EmailStr, Field, StrictBool

from spendtrackr.apps.companies.schemas import CompanyRead
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
