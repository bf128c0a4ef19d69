"""Directory sync: people and their teams, as an identity provider's events describe them.

A batch is all or nothing: every event is validated before any is applied, and the whole batch
runs in one transaction, so a malformed or conflicting event leaves nothing behind. Unknown
types are accepted and ignored.

Replays. An event id applied before is skipped (a provider's retry is harmless). An event sent
without an id is known by its content instead: its type, its subject (the person's email), its
data and its `occurred_at` when given, hashed. Within the replay window such a key is skipped
when nothing else has happened to that person since it was applied, other than events of the
same batch: a retried delivery is applied once, while a change made, undone and made again
(the same content twice, with another change between) is applied each time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.events import service as events_service
from spendtrackr.apps.events.schemas import (
    Accepted,
    Event,
    MembershipAdded,
    MembershipRemoved,
    RoleAssigned,
    UserCreated,
    UserDeleted,
    UserUpdated,
)
from spendtrackr.apps.teams import flows as teams_flows
from spendtrackr.apps.teams import service as teams_service
from spendtrackr.apps.users import flows as users_flows
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import Role, User
from spendtrackr.core.errors import ValidationFailed
from spendtrackr.core.security import normalize_email

logger = logging.getLogger(__name__)

SCHEMAS: dict[str, type[BaseModel]] = {
    "user.created": UserCreated,
    "user.updated": UserUpdated,
    "user.deleted": UserDeleted,
    "user.role_assigned": RoleAssigned,
    "role.assigned": RoleAssigned,
    "membership.added": MembershipAdded,
    "team.member_added": MembershipAdded,
    "membership.removed": MembershipRemoved,
    "team.member_removed": MembershipRemoved,
}


@dataclass(frozen=True)
class Checked:
    index: int
    event: Event
    data: BaseModel | None  # None: a type this service does not know
    key: str
    subject: str | None  # set for content keys only

    @property
    def derived(self) -> bool:
        return self.event.id is None


def _content_key(event: Event, subject: str | None) -> str:
    content = [event.type, subject, event.data, event.occurred_at]
    digest = hashlib.sha256(
        json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()
    return f"content:{digest}"


def _validated(events: list[Event]) -> list[Checked]:
    checked: list[Checked] = []
    seen: set[str] = set()
    for index, event in enumerate(events):
        if event.id is not None:
            if event.id in seen:
                raise ValidationFailed(
                    f"event {index}: id {event.id!r} appears twice in the batch",
                    code="invalid_event",
                )
            seen.add(event.id)
        schema = SCHEMAS.get(event.type)
        data: BaseModel | None = None
        if schema is not None:
            try:
                data = schema.model_validate(event.data)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValidationFailed(
                    f"event {index} ({event.type}): data.{where}: {first['msg']}",
                    code="invalid_event",
                ) from None
        email = getattr(data, "email", None)
        subject = normalize_email(email) if email and event.id is None else None
        key = event.id if event.id is not None else _content_key(event, subject)
        checked.append(Checked(index, event, data, key, subject))
    return checked


def _replays(
    session: Session, company: Company, checked: list[Checked], since: datetime
) -> set[int]:
    """The indexes of events to skip as replays."""
    done = events_service.already_processed(
        session, company_id=company.id, event_ids=[c.key for c in checked if not c.derived]
    )
    skip = {c.index for c in checked if not c.derived and c.key in done}
    derived = [c for c in checked if c.derived]
    history = events_service.recent_by_subject(
        session,
        company_id=company.id,
        subjects={c.subject for c in derived if c.subject},
        since=since,
    )
    batch_keys = {c.key for c in derived}
    without_subject: set[str] = set()
    for c in derived:
        if c.subject is None:  # an unknown type: ignored anyway, skipped once seen in this batch
            if c.key in without_subject:
                skip.add(c.index)
            without_subject.add(c.key)
            continue
        past = history[c.subject]
        if c.key in past:
            last = len(past) - 1 - past[::-1].index(c.key)
            if all(k in batch_keys for k in past[last + 1 :]):
                skip.add(c.index)
                continue
        past.append(c.key)
    return skip


def _user(session: Session, company: Company, email: str, index: int) -> User:
    user = users_service.get_in_company_by_email(session, company_id=company.id, email=email)
    if user is None:
        raise ValidationFailed(
            f"event {index}: no user {email} in this company", code="unknown_user"
        )
    return user


def _manager(session: Session, company: Company, email: str, index: int) -> User:
    manager = _user(session, company, email, index)
    if not manager.is_active:
        raise ValidationFailed(
            f"event {index}: manager {email} is deactivated", code="invalid_manager"
        )
    return manager


def _check_role(company: Company, data: BaseModel, index: int) -> None:
    """A directory may grant any role but admin, unless the company allows that too: its secret
    alone must not be a way to take over the company."""
    if getattr(data, "role", None) == Role.admin and not company.directory_may_grant_admin:
        raise ValidationFailed(
            f"event {index}: directory sync may not grant the admin role in this company "
            '(an admin can allow it: PATCH /companies/me {"directory_may_grant_admin": true})',
            code="directory_admin_forbidden",
        )


def _update(
    session: Session,
    company: Company,
    user: User,
    changes: dict[str, object],
    context: dict[str, object],
) -> None:
    if changes:
        users_service.update_user(
            session,
            company_id=company.id,
            actor_id=None,
            user_id=user.id,
            changes=changes,
            context=context,
        )


def _membership(
    session: Session, company: Company, data: MembershipAdded | MembershipRemoved, index: int
) -> None:
    """A team is found by name; a directory group that has no team yet becomes one. Adding a
    member twice, or removing one who is not there, changes nothing."""
    user = _user(session, company, data.email, index)
    team = teams_service.find_by_name(session, company_id=company.id, name=data.team)
    member = team is not None and team.id in users_service.team_ids_of(session, user)
    if isinstance(data, MembershipAdded):
        if team is None:
            team = teams_service.create_team(
                session, company_id=company.id, actor_id=None, name=data.team, manager_id=None
            )
        if not member:
            teams_flows.join(
                session, company_id=company.id, actor_id=None, team_id=team.id, user_id=user.id
            )
    elif team is not None and member:
        teams_flows.leave(
            session, company_id=company.id, actor_id=None, team_id=team.id, user_id=user.id
        )


def _apply_one(session: Session, company: Company, item: Checked, invite_ttl: timedelta) -> None:
    data, index = item.data, item.index
    context: dict[str, object] = {"directory_event_id": item.key}
    if isinstance(data, UserCreated):
        manager_id = (
            _manager(session, company, data.manager_email, index).id if data.manager_email else None
        )
        user = users_service.create_user(
            session,
            company_id=company.id,
            actor_id=None,
            email=data.email,
            full_name=data.full_name,
            role=data.role,
            password_hash=None,
            manager_id=manager_id,
            context=context,
        )
        users_flows.invite(session, user=user, ttl=invite_ttl)
    elif isinstance(data, UserUpdated):
        user = _user(session, company, data.email, index)
        changes = data.model_dump(exclude_unset=True, exclude={"email"}, exclude_none=True)
        _update(session, company, user, changes, context)
    elif isinstance(data, RoleAssigned):
        user = _user(session, company, data.email, index)
        _update(session, company, user, {"role": data.role}, context)
    elif isinstance(data, UserDeleted):
        user = _user(session, company, data.email, index)
        if user.is_active:
            users_service.delete_user(
                session,
                company_id=company.id,
                actor_id=None,
                user_id=user.id,
                context=context,
            )
    elif isinstance(data, MembershipAdded | MembershipRemoved):
        _membership(session, company, data, index)


def apply(
    session: Session,
    *,
    company: Company,
    events: list[Event],
    invite_ttl: timedelta,
    now: datetime,
    replay_window: timedelta,
) -> Accepted:
    checked = _validated(events)
    for item in checked:
        if item.data is not None:
            _check_role(company, item.data, item.index)
    skip = _replays(session, company, checked, since=now - replay_window)
    result = Accepted()
    for item in checked:
        if item.index in skip:
            result.skipped += 1
            continue
        if item.data is None:
            logger.info("ignoring directory event of unknown type %r", item.event.type)
            result.ignored += 1
        else:
            _apply_one(session, company, item, invite_ttl)
            result.applied += 1
        events_service.mark_processed(
            session,
            company_id=company.id,
            event_id=item.key,
            event_type=item.event.type,
            at=now,
            subject=item.subject,
            content_key=item.derived,
        )
    return result
