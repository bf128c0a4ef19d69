"""Deep verification: the money rows as they are now against what the audit log last recorded.

The hash chain proves the log was not edited; it says nothing of a spend row changed in the
database behind the application's back. Every entry about a spend (and every decision of an
approval step, every ledger posting) carries a digest of that entity's money fields, so a row
whose current digest differs from its last recorded one was changed outside the application.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spendtrackr.apps.approvals.models import ApprovalStep, StepStatus
from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.ledger import service as ledger_service
from spendtrackr.apps.spends.models import Spend


def _current(
    session: Session, company_id: uuid.UUID, model: Any, *where: Any
) -> Iterator[tuple[str, str]]:
    names = model.__audit_digest__
    stmt = select(model.id, *(getattr(model, n) for n in names)).where(
        model.company_id == company_id, *where
    )
    for row in session.execute(stmt).yield_per(5000):
        yield str(row.id), audit.digest({n: getattr(row, n) for n in names})


def verify_deep(session: Session, *, company_id: uuid.UUID) -> audit.DeepVerification:
    """Spends, decided approval steps and ledger journals against their last audited digest."""
    results = [
        audit.compare(
            "spend",
            _current(session, company_id, Spend),
            audit.last_digests(session, company_id=company_id, entity_type="spend"),
        ),
        audit.compare(
            "approval",
            _current(
                session,
                company_id,
                ApprovalStep,
                ApprovalStep.status.in_([StepStatus.approved, StepStatus.rejected]),
            ),
            audit.last_digests(
                session,
                company_id=company_id,
                entity_type="approval",
                actions=("approval.approved", "approval.rejected"),
            ),
        ),
        audit.compare(
            "journal",
            ledger_service.journal_digests(session, company_id=company_id),
            audit.last_digests(session, company_id=company_id, entity_type="journal"),
        ),
    ]
    return audit.DeepVerification(
        checked=sum(r.checked for r in results),
        mismatches=[m for r in results for m in r.mismatches],
    )
