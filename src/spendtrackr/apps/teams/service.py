"""Teams: a name and a manager. Membership rows belong to the users domain (see flows)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.teams.models import Team
from spendtrackr.core.db import apply_changes, get_in_company_or_404
from spendtrackr.core.errors import Conflict
from spendtrackr.core.pagination import PageParams, paginate

TEAM_NOT_FOUND = "Team not found"


class TeamNameTaken(Conflict):
    code = "team_name_taken"


def get_team_or_404(session: Session, *, company_id: uuid.UUID, team_id: uuid.UUID) -> Team:
    return get_in_company_or_404(session, Team, team_id, company_id, detail=TEAM_NOT_FOUND)


def list_teams(
    session: Session, *, company_id: uuid.UUID, page: PageParams
) -> tuple[int, list[Team]]:
    stmt = select(Team).where(Team.company_id == company_id)
    return paginate(session, stmt.order_by(Team.created_at.desc(), Team.id), page)


def _save(session: Session, team: Team) -> None:
    try:
        with session.begin_nested():
            session.add(team)
            session.flush()
    except IntegrityError:
        raise TeamNameTaken("A team with this name already exists") from None


def find_by_name(session: Session, *, company_id: uuid.UUID, name: str) -> Team | None:
    return session.scalars(
        select(Team).where(Team.company_id == company_id, Team.name == name)
    ).one_or_none()


def create_team(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    name: str,
    manager_id: uuid.UUID | None,
    gl_code: str | None = None,
) -> Team:
    team = Team(
        id=uuid.uuid4(), company_id=company_id, name=name, manager_id=manager_id, gl_code=gl_code
    )
    _save(session, team)
    audit.record_change(
        session,
        team,
        "team.created",
        actor_id=actor_id,
        metadata={"name": name, "manager_id": manager_id},
    )
    return team


def update_team(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    team_id: uuid.UUID,
    changes: dict[str, object],
) -> Team:
    team = get_team_or_404(session, company_id=company_id, team_id=team_id)
    diff = apply_changes(team, changes)
    _save(session, team)
    audit.record_change(
        session, team, "team.updated", actor_id=actor_id, metadata={"changes": diff}
    )
    return team


def delete_team(
    session: Session, *, company_id: uuid.UUID, actor_id: uuid.UUID | None, team: Team
) -> None:
    try:
        with session.begin_nested():
            session.delete(team)
            session.flush()
    except IntegrityError:
        raise Conflict(
            "This team is referenced by spends and cannot be deleted", code="in_use"
        ) from None
    audit.record_change(
        session, team, "team.deleted", actor_id=actor_id, metadata={"name": team.name}
    )


def record_membership(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    added: bool,
) -> None:
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="team.member_added" if added else "team.member_removed",
        entity_type="team",
        entity_id=team_id,
        metadata={"user_id": user_id},
    )


def managed_team_ids(
    session: Session, *, company_id: uuid.UUID, manager_id: uuid.UUID
) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(Team.id).where(Team.company_id == company_id, Team.manager_id == manager_id)
        )
    )


def team_manager_id(
    session: Session, *, company_id: uuid.UUID, team_id: uuid.UUID | None
) -> uuid.UUID | None:
    if team_id is None:
        return None
    return session.scalar(
        select(Team.manager_id).where(Team.company_id == company_id, Team.id == team_id)
    )


def names(session: Session, *, company_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(Team.id, Team.name).where(Team.company_id == company_id, Team.id.in_(ids))
    )
    return {row.id: row.name for row in rows}
