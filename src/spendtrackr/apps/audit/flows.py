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


BASELINE = "audit.baseline"


def _checked(
    session: Session, company_id: uuid.UUID
) -> list[tuple[str, Iterator[tuple[str, str]], dict[str, str]]]:
    """For each kind of money row: its current digests, and the last ones the log recorded."""
    return [
        (
            "spend",
            _current(session, company_id, Spend),
            audit.last_digests(session, company_id=company_id, entity_type="spend"),
        ),
        (
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
                actions=("approval.approved", "approval.rejected", BASELINE),
            ),
        ),
        (
            "journal",
            ledger_service.journal_digests(session, company_id=company_id),
            audit.last_digests(session, company_id=company_id, entity_type="journal"),
        ),
    ]


def verify_deep(session: Session, *, company_id: uuid.UUID) -> audit.DeepVerification:
    """Spends, decided approval steps and ledger journals against their last audited digest."""
    results = [
        audit.compare(kind, current, recorded)
        for kind, current, recorded in _checked(session, company_id)
    ]
    return audit.DeepVerification(
        checked=sum(r.checked for r in results),
        mismatches=[m for r in results for m in r.mismatches],
    )


def baseline(session: Session, *, company_id: uuid.UUID) -> int:
    """Record, in one `audit.baseline` entry each, the digest of every money row that no entry
    records yet (rows written before entries carried digests, or loaded outside the
    application). From then on a change to them shows in deep verification; what happened to
    them before cannot be proven. Rows that have a recorded digest are left alone, mismatched
    or not: a baseline never hides a change."""
    staged = 0
    for kind, current, recorded in _checked(session, company_id):
        missing = [(entity_id, value) for entity_id, value in current if entity_id not in recorded]
        for entity_id, value in missing:
            audit.record(
                session,
                company_id=company_id,
                actor_id=None,
                action=BASELINE,
                entity_type=kind,
                entity_id=entity_id,
                metadata={"digest": value},
            )
            staged += 1
    return staged
