from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from spendtrackr.apps.approvals import delegation, flows
from spendtrackr.apps.approvals.models import StepStatus
from spendtrackr.apps.approvals.schemas import (
    ApprovalRead,
    DecisionRequest,
    DelegationRead,
    DelegationSet,
    ReassignRequest,
)
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser, CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import StatusOk

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/approvals",
    tags=["approvals"],
    responses=errors(401),
)


@router.get("", response_model=Page[ApprovalRead])
def list_approvals(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    status: Annotated[StepStatus, Query()] = StepStatus.pending,
) -> Page[ApprovalRead]:
    """Approval steps you can act on (admins: every step), by default the open ones: yours,
    those escalated to you, and those of people you stand in for (their delegate)."""
    return flows.list_actionable(session, actor=user, status=status, page=page)


@router.post(
    "/{approval_id}/decision", response_model=StatusOk, responses=errors(403, 404, 409, 422)
)
def decide(
    approval_id: uuid.UUID, body: DecisionRequest, session: SessionDep, user: CurrentUser
) -> StatusOk:
    """Approve or reject the open step. 403 when it is not yours to decide (never your own
    spend), 409 `already_decided` when it was decided (or closed) already, 409
    `approval_not_open` when the steps before it are still open."""
    flows.decide(
        session, actor=user, approval_id=approval_id, approved=body.approved, comment=body.comment
    )
    return StatusOk()


@router.post(
    "/{approval_id}/reassign", response_model=ApprovalRead, responses=errors(403, 404, 409, 422)
)
def reassign(
    approval_id: uuid.UUID, body: ReassignRequest, session: SessionDep, actor: AdminUser
) -> ApprovalRead:
    """Hand an open step to another approver (admins): an active user of the company, never the
    submitter (422 `invalid_approver`); audited, and the new approver is told."""
    return flows.reassign(
        session, actor=actor, approval_id=approval_id, approver_id=body.approver_id
    )


delegations = APIRouter(
    dependencies=SIGNED_IN, route_class=JSONRoute, tags=["approvals"], responses=errors(401)
)


@delegations.get("/users/me/delegation", response_model=DelegationRead, responses=errors(404))
def my_delegation(session: SessionDep, user: CurrentUser) -> DelegationRead:
    """Who stands in for you while you are away (404 `no_delegation`)."""
    return delegation.get_delegation(session, actor=user, user_id=user.id)


@delegations.put("/users/me/delegation", response_model=DelegationRead, responses=errors(422))
def set_my_delegation(
    body: DelegationSet, session: SessionDep, user: CurrentUser
) -> DelegationRead:
    """Out of office: from `starts_on` to `ends_on` (UTC dates, both included) your delegate
    receives your approval requests and may decide the steps that are yours, those already
    open too; the audit log names whom they acted for. A delegate never decides their own
    spend."""
    return delegation.set_delegation(session, actor=user, user_id=user.id, body=body)


@delegations.delete(
    "/users/me/delegation", status_code=204, response_class=Response, responses=errors(404)
)
def clear_my_delegation(session: SessionDep, user: CurrentUser) -> Response:
    delegation.clear_delegation(session, actor=user, user_id=user.id)
    return Response(status_code=204)


@delegations.put(
    "/admin/users/{user_id}/delegation",
    response_model=DelegationRead,
    responses=errors(403, 404, 422),
)
def set_delegation_for(
    user_id: uuid.UUID, body: DelegationSet, session: SessionDep, actor: AdminUser
) -> DelegationRead:
    """Set anyone's delegation (admins)."""
    return delegation.set_delegation(session, actor=actor, user_id=user_id, body=body)


@delegations.delete(
    "/admin/users/{user_id}/delegation",
    status_code=204,
    response_class=Response,
    responses=errors(403, 404),
)
def clear_delegation_for(user_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> Response:
    delegation.clear_delegation(session, actor=actor, user_id=user_id)
    return Response(status_code=204)
