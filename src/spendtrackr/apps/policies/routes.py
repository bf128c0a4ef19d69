from __future__ import annotations

import uuid
from dataclasses import asdict

from fastapi import APIRouter

from spendtrackr.apps.policies import flows, service
from spendtrackr.apps.policies.schemas import (
    DecisionRead,
    DryRunRead,
    EvaluateRequest,
    PolicyCreate,
    PolicyDryRun,
    PolicyRead,
    PolicyUpdate,
)
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser, FinanceUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import Message

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/policies",
    tags=["policies"],
    responses=errors(401, 403),
)


@router.get("", response_model=Page[PolicyRead])
def list_policies(session: SessionDep, user: FinanceUser, page: PageDep) -> Page[PolicyRead]:
    total, items = service.list_policies(session, company_id=user.company_id, page=page)
    return Page(total=total, items=[PolicyRead.model_validate(p) for p in items])


@router.post("", response_model=PolicyRead, status_code=201, responses=errors(422))
def create_policy(body: PolicyCreate, session: SessionDep, actor: AdminUser) -> PolicyRead:
    """Rules: `{condition, action, priority}`, amounts in the company's base currency (the rule
    language: docs/POLICIES.md). The categories, vendors and teams a rule names, and a
    `user:<id>` approver, must be the company's own (the user active), else 422
    `invalid_category`, `invalid_vendor`, `invalid_team` or `invalid_approver`."""
    policy = flows.create_policy(
        session, actor=actor, name=body.name, is_active=body.is_active, rules=body.rules
    )
    return PolicyRead.model_validate(policy)


@router.post("/evaluate", response_model=DecisionRead, responses=errors(404, 422))
def evaluate(body: EvaluateRequest, session: SessionDep, user: FinanceUser) -> DecisionRead:
    """Dry run: the decision the active policies would take for this spend; nothing is created."""
    decision = flows.dry_run(session, actor=user, body=body)
    return DecisionRead.model_validate(
        {**asdict(decision), "matched_rules": [asdict(m) for m in decision.matched_rules]}
    )


@router.post("/dry-run", response_model=DryRunRead, responses=errors(422))
def dry_run(body: PolicyDryRun, session: SessionDep, user: FinanceUser) -> DryRunRead:
    """Try draft rules on the company's latest spends (`limit`, default 50) before saving them:
    each spend's outcome with the draft beside the active policies (or in place of `policy_id`'s
    rules), next to what it got at submission, and how many would change. Nothing is written.
    The rules are validated as `POST /policies` validates them (422 with the reason). Budget
    conditions are not judged here (the spends already count in the budgets)."""
    return flows.dry_run_draft(session, actor=user, body=body)


@router.get("/{policy_id}", response_model=PolicyRead, responses=errors(404))
def get_policy(policy_id: uuid.UUID, session: SessionDep, user: FinanceUser) -> PolicyRead:
    return PolicyRead.model_validate(
        service.get_policy_or_404(session, company_id=user.company_id, policy_id=policy_id)
    )


@router.patch("/{policy_id}", response_model=PolicyRead, responses=errors(404, 422))
def update_policy(
    policy_id: uuid.UUID, body: PolicyUpdate, session: SessionDep, actor: AdminUser
) -> PolicyRead:
    """Change any field; `rules` replaces the whole list."""
    policy = flows.update_policy(session, actor=actor, policy_id=policy_id, body=body)
    return PolicyRead.model_validate(policy)


@router.delete("/{policy_id}", response_model=Message, responses=errors(404))
def delete_policy(policy_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> Message:
    service.delete_policy(
        session, company_id=actor.company_id, actor_id=actor.id, policy_id=policy_id
    )
    return Message(message="Deleted successfully")
