from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from spendtrackr.apps.companies.deps import DirectoryCompany
from spendtrackr.apps.events import flows
from spendtrackr.apps.events.schemas import Accepted, Events
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import SettingsDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.routing import JSONRoute

router = APIRouter(route_class=JSONRoute, prefix="/events", tags=["directory sync"])


@router.post("/webhook", response_model=Accepted, responses=errors(401, 409, 422))
def directory_webhook(
    body: Events, session: SessionDep, company: DirectoryCompany, settings: SettingsDep
) -> Accepted:
    """Directory sync from an identity provider, authenticated by `x-webhook-secret`: a list of
    `{id, type, data}`. `user.created` `{email, full_name, role?, manager_email?}` provisions a
    user without a password (with an invite); `user.updated` `{email, full_name?, role?,
    is_active?}`; `user.deleted` `{email}` deactivates and revokes tokens. Ids seen before are
    skipped, unknown types ignored; a malformed event rejects the whole batch (422)."""
    ttl = timedelta(days=settings.invite_token_days)
    return flows.apply(session, company=company, events=body, invite_ttl=ttl)
