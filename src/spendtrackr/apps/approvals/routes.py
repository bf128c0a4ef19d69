from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from spendtrackr.apps.approvals import flows, service
from spendtrackr.apps.approvals.models import StepStatus
from spendtrackr.apps.approvals.schemas import ApprovalRead, DecisionRequest
from spendtrackr.apps.users.deps import CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import StatusOk

router = APIRouter(
    route_class=JSONRoute, prefix="/approvals", tags=["approvals"], responses=errors(401)
)


@router.get("", response_model=Page[ApprovalRead])
def list_approvals(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    status: Annotated[StepStatus | None, Query()] = StepStatus.pending,
) -> Page[ApprovalRead]:
    """Approval steps you can act on (admins: every step), by default the open ones."""
    total, steps = service.list_actionable(
        session,
        company_id=user.company_id,
        user_id=user.id,
        role=user.role,
        status=status,
        page=page,
    )
    return Page(total=total, items=[ApprovalRead.model_validate(s) for s in steps])


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
