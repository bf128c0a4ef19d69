"""Company users, managed by admins (`/admin/users`); their names, for everyone (`/users/names`)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from spendtrackr.apps.users import flows, service
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser, CurrentUser
from spendtrackr.apps.users.models import Role
from spendtrackr.apps.users.schemas import (
    PeopleNames,
    PersonName,
    UserCreate,
    UserCreated,
    UserRead,
    UserUpdate,
)
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import PasswordsDep, SettingsDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, SyncPageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import Message

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/admin/users",
    tags=["users"],
    responses=errors(401, 403),
)


@router.get("", response_model=Page[UserRead])
def list_users(
    session: SessionDep,
    actor: AdminUser,
    page: SyncPageDep,
    role: Annotated[Role | None, Query()] = None,
    is_active: Annotated[bool | None, Query()] = None,
) -> Page[UserRead]:
    """The company's users, newest first; by cursor (`updated_since`, `cursor`) in the order
    they changed."""
    listed = service.list_users(
        session, company_id=actor.company_id, role=role, is_active=is_active, page=page
    )
    return listed.page(service.to_read(session, listed.rows))


@router.post("", response_model=UserCreated, status_code=201, responses=errors(409, 422))
def create_user(
    body: UserCreate,
    session: SessionDep,
    actor: AdminUser,
    passwords: PasswordsDep,
    settings: SettingsDep,
) -> UserCreated:
    """Create a user. Without a password the answer carries a one-time `invite_token` for
    `POST /auth/accept-invite`."""
    user = service.create_user(
        session,
        company_id=actor.company_id,
        actor_id=actor.id,
        email=body.email,
        full_name=body.full_name,
        role=body.role,
        password_hash=passwords.hash(body.password, email=body.email) if body.password else None,
        manager_id=body.manager_id,
    )
    invite = None
    if body.password is None:
        invite = flows.invite(session, user=user, ttl=timedelta(days=settings.invite_token_days))
    read = service.to_read(session, [user])[0]
    return UserCreated(**read.model_dump(), invite_token=invite)


@router.get("/{user_id}", response_model=UserRead, responses=errors(404))
def get_user(user_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> UserRead:
    user = service.get_user_or_404(session, company_id=actor.company_id, user_id=user_id)
    return service.to_read(session, [user])[0]


@router.patch("/{user_id}", response_model=UserRead, responses=errors(404, 409, 422))
def update_user(
    user_id: uuid.UUID, body: UserUpdate, session: SessionDep, actor: AdminUser
) -> UserRead:
    """Change name, role, manager or active state. The last active admin cannot be demoted or
    deactivated (409 `last_admin`). A deactivation revokes the user's tokens at once."""
    changes = body.changes()
    user = service.update_user(
        session, company_id=actor.company_id, actor_id=actor.id, user_id=user_id, changes=changes
    )
    return service.to_read(session, [user])[0]


@router.delete("/{user_id}", response_model=Message, responses=errors(404, 409))
def delete_user(user_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> Message:
    """Soft delete: the user is deactivated and their tokens revoked; history is kept."""
    service.delete_user(session, company_id=actor.company_id, actor_id=actor.id, user_id=user_id)
    return Message(message="Deleted successfully")


# Every signed-in user: the names a client shows for the people a spend or a step mentions.
people = APIRouter(
    dependencies=SIGNED_IN, route_class=JSONRoute, tags=["users"], responses=errors(401)
)


@people.get("/users/names", response_model=PeopleNames, responses=errors(422))
def people_names(
    session: SessionDep,
    user: CurrentUser,
    ids: Annotated[list[uuid.UUID] | None, Query(alias="id", max_length=100)] = None,
) -> PeopleNames:
    """Names of the people of your company: those with the given `id`s (up to 100; unknown ids
    and other companies' are left out), or, without ids, the active people by name (up to
    500): what a client shows for a spend's submitter or an approver, and offers when a card
    is issued. Any signed-in user."""
    if ids:
        found = service.names(session, company_id=user.company_id, ids=list(dict.fromkeys(ids)))
    else:
        found = service.directory(session, company_id=user.company_id, limit=500)
    return PeopleNames(items=[PersonName(id=i, full_name=n) for i, n in found.items()])
