"""Approver resolution, at the flow level: who decides a step for each approver spec, and where a
step goes when nobody it names can take it (the company's admins, never the submitter)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from spendtrackr.apps.approvals import flows
from spendtrackr.apps.approvals.service import Approver
from spendtrackr.apps.spends.models import Spend
from spendtrackr.apps.users.models import User
from tests.factories import Actor, create_team, create_user, join_team, signup


@pytest.fixture
def session(app: FastAPI) -> Iterator[Session]:
    with app.state.session_factory() as session:
        yield session


def _resolve(session: Session, submitter: Actor, spec: str, team_id: str | None = None) -> Approver:
    user = session.get(User, uuid.UUID(submitter.id))
    assert user is not None
    spend = Spend(
        company_id=user.company_id,
        user_id=user.id,
        amount=Decimal("10"),
        currency="USD",
        team_id=uuid.UUID(team_id) if team_id else None,
    )
    try:
        return flows.resolve_approver(session, spend, user, spec)
    finally:
        session.rollback()  # read only; and SQLite's writer lock goes back to the API


def _deactivate(client: TestClient, admin: Actor, user: Actor) -> None:
    response = client.patch(
        f"/admin/users/{user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200, response.text


def test_the_manager_then_the_teams_manager_then_the_admins(
    client: TestClient, session: Session
) -> None:
    admin = signup(client)
    manager = create_user(client, admin, role="manager")
    reporting = create_user(client, admin, manager_id=manager.id)
    assert _resolve(session, reporting, "manager").user_id == uuid.UUID(manager.id)

    lead = create_user(client, admin, role="manager")
    team = create_team(client, admin, manager_id=lead.id)
    loner = create_user(client, admin)  # no manager of their own
    join_team(client, admin, team, loner)
    assert _resolve(session, loner, "manager", team["id"]).user_id == uuid.UUID(lead.id)
    # a team the submitter does not belong to names no manager for them
    stranger = create_user(client, admin)
    assert _resolve(session, stranger, "manager", team["id"]) == flows.ADMINS
    assert _resolve(session, loner, "manager") == flows.ADMINS  # no team on the spend

    _deactivate(client, admin, manager)
    assert _resolve(session, reporting, "manager") == flows.ADMINS


def test_a_role_needs_someone_else_in_it(client: TestClient, session: Session) -> None:
    admin = signup(client)
    finance = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    assert _resolve(session, employee, "role:finance") == Approver(
        spec="role:finance", role="finance"
    )
    # the only finance user never approves their own spend
    assert _resolve(session, finance, "role:finance") == flows.ADMINS


def test_a_named_user_unless_it_is_the_submitter_or_gone(
    client: TestClient, session: Session
) -> None:
    admin = signup(client)
    named = create_user(client, admin, role="finance")
    employee = create_user(client, admin)
    spec = f"user:{named.id}"
    assert _resolve(session, employee, spec).user_id == uuid.UUID(named.id)
    assert _resolve(session, named, spec) == flows.ADMINS
    _deactivate(client, admin, named)
    assert _resolve(session, employee, spec) == flows.ADMINS
