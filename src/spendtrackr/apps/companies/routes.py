from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from spendtrackr.apps.companies import flows, service
from spendtrackr.apps.companies.schemas import (
    CompanyRead,
    CompanyUpdate,
    WebhookSecret,
    WebhookSecretRotation,
)
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser, CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.routing import JSONRoute

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/companies/me",
    tags=["companies"],
    responses=errors(401),
)


@router.get("", response_model=CompanyRead)
def read_company(session: SessionDep, user: CurrentUser) -> CompanyRead:
    """The caller's company."""
    return CompanyRead.model_validate(service.get_company_or_404(session, user.company_id))


@router.patch("", response_model=CompanyRead, responses=errors(403, 422))
def update_company(body: CompanyUpdate, session: SessionDep, actor: AdminUser) -> CompanyRead:
    """Rename the company, change its base currency or time zone, its ceilings of card limits
    (cards above a new ceiling are lowered to it), or whether directory sync may grant admin."""
    company = flows.update_company(session, actor=actor, body=body)
    return CompanyRead.model_validate(company)


def _rotate(
    session: SessionDep,
    actor: AdminUser,
    body: WebhookSecretRotation | None,
    source: service.SecretSource,
) -> WebhookSecret:
    valid_for = timedelta(seconds=body.previous_expires_in_seconds if body else 0)
    secret, until = service.rotate_secret(
        session,
        company_id=actor.company_id,
        actor_id=actor.id,
        source=source,
        previous_valid_for=valid_for,
    )
    return WebhookSecret(secret=secret, previous_valid_until=until)


@router.post(
    "/webhook-secret", response_model=WebhookSecret, status_code=201, responses=errors(403, 422)
)
def rotate_webhook_secret(
    session: SessionDep, actor: AdminUser, body: WebhookSecretRotation | None = None
) -> WebhookSecret:
    """A new secret for the card network's webhooks (`/card-network/...`), shown once. The
    previous secret stops working at once, or after `previous_expires_in_seconds` (up to 7
    days), so the processor can be given the new one without a gap. It does not authenticate
    directory sync, which has its own secret (`POST /companies/me/directory-secret`)."""
    return _rotate(session, actor, body, service.SecretSource.card_network)


@router.post(
    "/directory-secret", response_model=WebhookSecret, status_code=201, responses=errors(403, 422)
)
def rotate_directory_secret(
    session: SessionDep, actor: AdminUser, body: WebhookSecretRotation | None = None
) -> WebhookSecret:
    """A new secret for directory sync (`POST /events/webhook`), shown once; rotated as the
    card network's is. Directory events cannot make anyone an admin unless the company allows it
    (`directory_may_grant_admin`)."""
    return _rotate(session, actor, body, service.SecretSource.directory)
