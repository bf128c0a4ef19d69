from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from spendtrackr.apps.reports import flows
from spendtrackr.apps.reports.schemas import GroupBy, SpendStatus, SpendSummary
from spendtrackr.apps.users.deps import SIGNED_IN, CurrentUser, ReadSession
from spendtrackr.core.openapi import errors
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import (
    DateRangeDep,
)

router = APIRouter(
    dependencies=SIGNED_IN, route_class=JSONRoute, tags=["reports"], responses=errors(401, 403)
)


@router.get("/reports/spend-summary", response_model=SpendSummary, responses=errors(422))
def spend_summary(
    session: ReadSession,
    user: CurrentUser,
    group_by: Annotated[GroupBy, Query()],
    dates: DateRangeDep,
    status: Annotated[
        list[SpendStatus] | None,
        Query(
            description="Only spends in these statuses (repeat it: `status=approved&status="
            "reimbursed` is what was spent)"
        ),
    ] = None,
) -> SpendSummary:
    """Count and exact total per group and currency (never added across currencies), by
    `spend_date`, of every spend unless `status` narrows it. Finance and admins see the
    company; managers their teams and reports."""
    return flows.spend_summary(
        session,
        actor=user,
        group_by=group_by,
        date_from=dates.date_from,
        date_to=dates.date_to,
        statuses=frozenset(status or ()),
    )
