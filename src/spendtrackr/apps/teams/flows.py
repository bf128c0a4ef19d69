"""Team use cases that touch users: manager checks and membership."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from spendtrackr.apps.policies import service as policies_service
from spendtrackr.apps.teams import service as teams_service
from spendtrackr.apps.teams.models import Team
from spendtrackr.apps.teams.schemas import TeamMemberRead, TeamRead, TeamUpdate
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import TeamMember, User
from spendtrackr.core.pagination import Page, PageParams


def _read(session: Session, team: Team) -> TeamRead:
    read = TeamRead.model_validate(team)
    read.member_ids = users_service.team_member_ids(session, team_id=team.id)
    return read


def list_teams(session: Session, *, actor: User, page: PageParams) -> Page[TeamRead]:
    total, teams = teams_service.list_teams(session, company_id=actor.company_id, page=page)
    return Page(total=total, items=[_read(session, t) for t in teams])


def get_team(session: Session, *, actor: User, team_id: uuid.UUID) -> TeamRead:
    team = teams_service.get_team_or_404(session, company_id=actor.company_id, team_id=team_id)
    return _read(session, team)


def create_team(
    session: Session,
    *,
    actor: User,
    name: str,
    manager_id: uuid.UUID | None,
    gl_code: str | None = None,
) -> TeamRead:
    users_service.check_manager(
        session, company_id=actor.company_id, manager_id=manager_id, user_id=None
    )
    team = teams_service.create_team(
        session,
        company_id=actor.company_id,
        actor_id=actor.id,
        name=name,
        manager_id=manager_id,
        gl_code=gl_code,
    )
    return _read(session, team)


def update_team(session: Session, *, actor: User, team_id: uuid.UUID, body: TeamUpdate) -> TeamRead:
    changes = body.changes()
    users_service.check_manager(
        session, company_id=actor.company_id, manager_id=body.manager_id, user_id=None
    )
    team = teams_service.update_team(
        session, company_id=actor.company_id, actor_id=actor.id, team_id=team_id, changes=changes
    )
    return _read(session, team)


def delete_team(session: Session, *, actor: User, team_id: uuid.UUID) -> None:
    team = teams_service.get_team_or_404(session, company_id=actor.company_id, team_id=team_id)
    policies_service.ensure_not_named(
        session, company_id=actor.company_id, kind="team", item_id=team.id
    )
    users_service.remove_all_members(session, company_id=actor.company_id, team_id=team.id)
    session.flush()
    teams_service.delete_team(session, company_id=actor.company_id, actor_id=actor.id, team=team)


def join(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    team_id: uuid.UUID,
    user_id: uuid.UUID,
) -> TeamMember:
    """A user of the company joins the team (409 `already_member`); `actor_id` None: the
    directory."""
    member = users_service.add_team_member(
        session, company_id=company_id, team_id=team_id, user_id=user_id
    )
    teams_service.record_membership(
        session,
        company_id=company_id,
        actor_id=actor_id,
        team_id=team_id,
        user_id=user_id,
        added=True,
    )
    return member


def leave(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    team_id: uuid.UUID,
    user_id: uuid.UUID,
) -> None:
    users_service.remove_team_member(
        session, company_id=company_id, team_id=team_id, user_id=user_id
    )
    teams_service.record_membership(
        session,
        company_id=company_id,
        actor_id=actor_id,
        team_id=team_id,
        user_id=user_id,
        added=False,
    )


def add_member(
    session: Session, *, actor: User, team_id: uuid.UUID, user_id: uuid.UUID
) -> TeamMemberRead:
    team = teams_service.get_team_or_404(session, company_id=actor.company_id, team_id=team_id)
    member = join(
        session, company_id=actor.company_id, actor_id=actor.id, team_id=team.id, user_id=user_id
    )
    return TeamMemberRead.model_validate(member)


def remove_member(session: Session, *, actor: User, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
    team = teams_service.get_team_or_404(session, company_id=actor.company_id, team_id=team_id)
    leave(session, company_id=actor.company_id, actor_id=actor.id, team_id=team.id, user_id=user_id)
