from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from spendtrackr.apps.teams import flows
from spendtrackr.apps.teams.schemas import (
    MemberAdd,
    TeamCreate,
    TeamMemberRead,
    TeamRead,
    TeamUpdate,
)
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import Message

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/teams",
    tags=["teams"],
    responses=errors(401, 403),
)


@router.get("", response_model=Page[TeamRead])
def list_teams(session: SessionDep, actor: AdminUser, page: PageDep) -> Page[TeamRead]:
    return flows.list_teams(session, actor=actor, page=page)


@router.post("", response_model=TeamRead, status_code=201, responses=errors(409, 422))
def create_team(body: TeamCreate, session: SessionDep, actor: AdminUser) -> TeamRead:
    """Create a team; `manager_id` must be an active user of the company (else 422
    `invalid_manager`). Names are unique (409)."""
    return flows.create_team(
        session, actor=actor, name=body.name, manager_id=body.manager_id, gl_code=body.gl_code
    )


@router.get("/{team_id}", response_model=TeamRead, responses=errors(404))
def get_team(team_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> TeamRead:
    return flows.get_team(session, actor=actor, team_id=team_id)


@router.patch("/{team_id}", response_model=TeamRead, responses=errors(404, 409, 422))
def update_team(
    team_id: uuid.UUID, body: TeamUpdate, session: SessionDep, actor: AdminUser
) -> TeamRead:
    return flows.update_team(session, actor=actor, team_id=team_id, body=body)


@router.delete("/{team_id}", response_model=Message, responses=errors(404, 409))
def delete_team(team_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> Message:
    flows.delete_team(session, actor=actor, team_id=team_id)
    return Message(message="Deleted successfully")


@router.post(
    "/{team_id}/members",
    response_model=TeamMemberRead,
    status_code=201,
    responses=errors(404, 409, 422),
)
def add_member(
    team_id: uuid.UUID, body: MemberAdd, session: SessionDep, actor: AdminUser
) -> TeamMemberRead:
    """Add a user of the company to the team (409 `already_member`)."""
    return flows.add_member(session, actor=actor, team_id=team_id, user_id=body.user_id)


@router.delete(
    "/{team_id}/members/{user_id}", status_code=204, response_class=Response, responses=errors(404)
)
def remove_member(
    team_id: uuid.UUID, user_id: uuid.UUID, session: SessionDep, actor: AdminUser
) -> Response:
    flows.remove_member(session, actor=actor, team_id=team_id, user_id=user_id)
    return Response(status_code=204)
