from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from spendtrackr.apps.companies import service
from spendtrackr.apps.companies.schemas import (
    CompanyRead,
    CompanyUpdate,
    WebhookSecret,
    WebhookSecretRotation,
)
from spendtrackr.apps.users.deps import AdminUser, CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.routing import JSONRoute

router = APIRouter(
    route_class=JSONRoute, prefix="/companies/me", tags=["companies"], responses=errors(401)
)


@router.get("", response_model=CompanyRead)
def read_company(session: SessionDep, user: CurrentUser) -> CompanyRead:
    """The caller's company."""
    return CompanyRead.model_validate(service.get_company_or_404(session, user.company_id))


@router.patch("", response_model=CompanyRead, responses=errors(403, 422))
def update_company(body: CompanyUpdate, session: SessionDep, actor: AdminUser) -> CompanyRead:
    changes = body.changes()
    company = service.update_company(
        session, company_id=actor.company_id, actor_id=actor.id, changes=changes
    )
    return CompanyRead.model_validate(company)


@router.post(
    "/webhook-secret", response_model=WebhookSecret, status_code=201, responses=errors(403, 422)
)
def rotate_webhook_secret(
    session: SessionDep, actor: AdminUser, body: WebhookSecretRotation | None = None
) -> WebhookSecret:
    """A new secret for the card network and directory-sync webhooks, shown once. The previous
    secret stops working at once, or after `previous_expires_in_seconds` (up to 7 days), so the
    processor can be given the new one without a gap."""
    valid_for = timedelta(seconds=body.previous_expires_in_seconds if body else 0)
    secret, until = service.rotate_webhook_secret(
        session, company_id=actor.company_id, actor_id=actor.id, previous_valid_for=valid_for
    )
    return WebhookSecret(secret=secret, previous_valid_until=until)
