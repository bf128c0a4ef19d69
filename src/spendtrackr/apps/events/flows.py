"""Directory sync: user.created / user.updated / user.deleted events from an identity provider.

A batch is all or nothing: every event is validated before any is applied, and the whole batch
runs in one transaction, so a malformed or conflicting event leaves nothing behind. Event ids
already applied are skipped (a provider's retry is harmless); unknown types are accepted and
ignored.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.events import service as events_service
from spendtrackr.apps.events.schemas import Accepted, Event, UserCreated, UserDeleted, UserUpdated
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import Role, User
from spendtrackr.core.errors import ValidationFailed

logger = logging.getLogger(__name__)

SCHEMAS: dict[str, type[BaseModel]] = {
    "user.created": UserCreated,
    "user.updated": UserUpdated,
    "user.deleted": UserDeleted,
}


def _validated(events: list[Event]) -> list[tuple[Event, BaseModel | None]]:
    checked: list[tuple[Event, BaseModel | None]] = []
    seen: set[str] = set()
    for index, event in enumerate(events):
        if event.id in seen:
            raise ValidationFailed(
                f"event {index}: id {event.id!r} appears twice in the batch", code="invalid_event"
            )
        seen.add(event.id)
        schema = SCHEMAS.get(event.type)
        if schema is None:
            checked.append((event, None))
            continue
        try:
            checked.append((event, schema.model_validate(event.data)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValidationFailed(
                f"event {index} ({event.type}): data.{where}: {first['msg']}", code="invalid_event"
            ) from None
    return checked


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


def apply(
    session: Session, *, company: Company, events: list[Event], invite_ttl: timedelta
) -> Accepted:
    checked = _validated(events)
    for index, (_event, data) in enumerate(checked):
        if data is not None:
            _check_role(company, data, index)
    done = events_service.already_processed(
        session, company_id=company.id, event_ids=[e.id for e in events]
    )
    result = Accepted()
    for index, (event, data) in enumerate(checked):
        if event.id in done:
            result.skipped += 1
            continue
        context: dict[str, object] = {"directory_event_id": event.id}
        if data is None:
            logger.info("ignoring directory event of unknown type %r", event.type)
            result.ignored += 1
        elif isinstance(data, UserCreated):
            manager_id = (
                _manager(session, company, data.manager_email, index).id
                if data.manager_email
                else None
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
            users_service.create_invite(session, user=user, ttl=invite_ttl)
            result.applied += 1
        elif isinstance(data, UserUpdated):
            user = _user(session, company, data.email, index)
            changes = data.model_dump(exclude_unset=True, exclude={"email"}, exclude_none=True)
            if changes:
                users_service.update_user(
                    session,
                    company_id=company.id,
                    actor_id=None,
                    user_id=user.id,
                    changes=changes,
                    context=context,
                )
            result.applied += 1
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
            result.applied += 1
        events_service.mark_processed(
            session, company_id=company.id, event_id=event.id, event_type=event.type
        )
    return result
