"""The dry run of the policies, for someone of the company."""

from __future__ import annotations

from sqlalchemy.orm import Session

from spendtrackr.apps.policies import engine, service
from spendtrackr.apps.policies.schemas import EvaluateRequest
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import User
from spendtrackr.core.currency import quantize


def dry_run(session: Session, *, actor: User, body: EvaluateRequest) -> engine.Decision:
    subject = (
        users_service.get_user_or_404(session, company_id=actor.company_id, user_id=body.user_id)
        if body.user_id is not None
        else actor
    )
    if body.team_id is not None:
        team_ids = frozenset({body.team_id})
    else:
        team_ids = frozenset(users_service.team_ids_for(session, [subject.id]).get(subject.id, []))
    facts = engine.Facts(
        amount=quantize(body.amount, body.currency),
        currency=body.currency,
        source=body.source,
        category_id=body.category_id,
        vendor_id=body.vendor_id,
        user_role=subject.role,
        team_ids=team_ids,
        has_receipt=body.has_receipt,
    )
    return engine.evaluate(facts, service.active_rules(session, company_id=actor.company_id))
