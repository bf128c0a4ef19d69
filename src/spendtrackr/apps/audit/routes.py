from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from spendtrackr.apps.audit import flows, service
from spendtrackr.apps.audit.schemas import AuditEntryRead, DeepResult, MismatchRead, VerifyResult
from spendtrackr.apps.users.deps import SIGNED_IN, FinanceUser, ReadSession
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, SyncPageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import DateRangeDep

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/audit-logs",
    tags=["audit"],
    responses=errors(401, 403),
)

Text = Annotated[str | None, Query(max_length=64)]


@router.get("", response_model=Page[AuditEntryRead])
def list_audit_logs(
    session: ReadSession,
    actor: FinanceUser,
    page: SyncPageDep,
    dates: DateRangeDep,
    action: Text = None,
    entity_type: Text = None,
    entity_id: Text = None,
    actor_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[AuditEntryRead]:
    """The company's audit log, newest first; by cursor (`updated_since`, `cursor`) oldest
    first, in the order entries were written. Entries are never changed or deleted."""
    filters = service.AuditFilters(
        action=action, entity_type=entity_type, entity_id=entity_id, actor_id=actor_id, dates=dates
    )
    listed = service.list_entries(session, company_id=actor.company_id, filters=filters, page=page)
    return listed.page([AuditEntryRead.model_validate(e) for e in listed.rows])


@router.get("/verify", response_model=VerifyResult, response_model_exclude_unset=True)
def verify_audit_chain(
    session: SessionDep,
    actor: FinanceUser,
    deep: Annotated[
        bool, Query(description="Also check spends, approvals and ledger lines against the log")
    ] = False,
) -> VerifyResult:
    """Recompute the company's hash chain; `first_invalid_id` names the first entry that was
    changed (null with `valid: false` when entries were removed from its end). With
    `deep=true`, every spend, decided approval step and ledger journal is also compared with
    the digest of its money fields that its last audit entry recorded: a row edited in the
    database directly is listed in `deep.mismatches`, and makes `valid` false."""
    result = service.verify_chain(session, company_id=actor.company_id)
    answer = VerifyResult(
        valid=result.valid, checked=result.checked, first_invalid_id=result.first_invalid_id
    )
    if not deep:
        return answer  # `deep` unset: left out of the body, which stays as it always was
    found = flows.verify_deep(session, company_id=actor.company_id)
    answer.valid = result.valid and not found.mismatches
    answer.deep = DeepResult(
        checked=found.checked,
        mismatches=[MismatchRead.model_validate(m) for m in found.mismatches[:1000]],
    )
    return answer
