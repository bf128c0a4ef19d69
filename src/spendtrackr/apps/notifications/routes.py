from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from spendtrackr.apps.notifications import service
from spendtrackr.apps.notifications.schemas import NotificationRead, ReadAllResult
from spendtrackr.apps.users.deps import CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import StatusOk

router = APIRouter(
    route_class=JSONRoute, prefix="/notifications", tags=["notifications"], responses=errors(401)
)


@router.get("", response_model=Page[NotificationRead])
def list_notifications(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    unread_only: Annotated[bool, Query()] = False,
) -> Page[NotificationRead]:
    """Your notifications, newest first."""
    total, items = service.list_notifications(
        session, company_id=user.company_id, user_id=user.id, unread_only=unread_only, page=page
    )
    return Page(total=total, items=[NotificationRead.model_validate(n) for n in items])


@router.post("/read-all", response_model=ReadAllResult)
def mark_all_read(session: SessionDep, user: CurrentUser) -> ReadAllResult:
    updated = service.mark_all_read(session, company_id=user.company_id, user_id=user.id)
    return ReadAllResult(updated=updated)


@router.post("/{notification_id}/read", response_model=StatusOk, responses=errors(404))
def mark_read(notification_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> StatusOk:
    service.mark_read(
        session, company_id=user.company_id, user_id=user.id, notification_id=notification_id
    )
    return StatusOk()
