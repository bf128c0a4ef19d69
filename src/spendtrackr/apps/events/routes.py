from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from spendtrackr.apps.companies.deps import DirectoryCompany
from spendtrackr.apps.events import flows
from spendtrackr.apps.events.schemas import Accepted, Events
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import NowDep, SettingsDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.routing import JSONRoute

router = APIRouter(route_class=JSONRoute, prefix="/events", tags=["directory sync"])


@router.post("/webhook", response_model=Accepted, responses=errors(401, 409, 422))
def directory_webhook(
    body: Events,
    session: SessionDep,
    company: DirectoryCompany,
    settings: SettingsDep,
    now: NowDep,
) -> Accepted:
    """Directory sync from an identity provider, authenticated by `x-webhook-secret`: a list of
    `{id?, type, data, occurred_at?}`, applied all or nothing.

    - `user.created` `{email, full_name, role?, manager_email?}` provisions a user without a
      password (with an invite);
    - `user.updated` `{email, full_name?, role?, is_active?}`;
    - `user.role_assigned` (or `role.assigned`) `{email, role}`;
    - `user.deleted` `{email}` deactivates and revokes tokens;
    - `membership.added` / `membership.removed` (or `team.member_added` / `team.member_removed`)
      `{email, team}`: `team` is the team's name (`team_name` and `group` are read too); a
      group with no team yet becomes one.

    An `id` seen before is skipped. Without an `id`, an event is known by its content (type,
    person, data, `occurred_at`): within `DIRECTORY_REPLAY_WINDOW_HOURS` (24) it is skipped
    when nothing else happened to that person since, so a retried delivery applies once. Unknown
    types are ignored; a malformed event rejects the whole batch (422)."""
    return flows.apply(
        session,
        company=company,
        events=body,
        invite_ttl=timedelta(days=settings.invite_token_days),
        now=now,
        replay_window=timedelta(hours=settings.directory_replay_window_hours),
    )
