"""Companies (tenants): created at signup, read and renamed by their admins."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.companies.models import Company
from spendtrackr.core.db import apply_changes, utcnow
from spendtrackr.core.errors import NotFound
from spendtrackr.core.security import digests_equal, new_opaque_token, token_digest


def create_company(session: Session, *, name: str, base_currency: str) -> Company:
    company = Company(id=uuid.uuid4(), name=name, base_currency=base_currency)
    session.add(company)
    session.flush()
    return company


def get_company_or_404(
    session: Session, company_id: uuid.UUID, *, for_update: bool = False
) -> Company:
    company = session.get(
        Company, company_id, with_for_update=for_update, populate_existing=for_update
    )
    if company is None:
        raise NotFound("Company not found")
    return company


def update_company(
    session: Session, *, company_id: uuid.UUID, actor_id: uuid.UUID, changes: dict[str, object]
) -> Company:
    company = get_company_or_404(session, company_id)
    diff = apply_changes(company, changes)
    audit.record(
        session,
        company_id=company.id,
        actor_id=actor_id,
        action="company.updated",
        entity_type="company",
        entity_id=company.id,
        metadata={"changes": diff},
    )
    return company


def rotate_webhook_secret(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    previous_valid_for: timedelta = timedelta(0),
) -> tuple[str, datetime | None]:
    """A new secret replaces the current one, which stays valid for `previous_valid_for` (by
    default it stops at once), so that a processor can be given the new one without a gap.
    Only SHA-256 digests are kept. Returns the secret and when the previous one stops.

    The company's row is read locked: a rotation running at the same time then replaces this
    one's secret (keeping it as the previous one) instead of the secret both would have read,
    which left the first secret handed out invalid at once."""
    company = get_company_or_404(session, company_id, for_update=True)
    secret = f"whsec_{new_opaque_token(32)}"
    overlap = previous_valid_for > timedelta(0) and company.webhook_secret_hash is not None
    until = utcnow() + previous_valid_for if overlap else None
    company.previous_webhook_secret_hash = company.webhook_secret_hash if overlap else None
    company.previous_webhook_secret_expires_at = until
    company.webhook_secret_hash = token_digest(secret)
    audit.record(
        session,
        company_id=company.id,
        actor_id=actor_id,
        action="company.webhook_secret_rotated",
        entity_type="company",
        entity_id=company.id,
        metadata={"previous_valid_until": until.isoformat() if until else None},
    )
    return secret, until


# Built once (see core/db.py): every card authorization starts with the first.
_BY_WEBHOOK_DIGEST = select(Company).where(Company.webhook_secret_hash == bindparam("digest"))
_BY_PREVIOUS_DIGEST = select(Company).where(
    Company.previous_webhook_secret_hash == bindparam("digest")
)


def company_for_webhook_secret(session: Session, secret: str | None) -> Company | None:
    """The company a webhook secret belongs to: its current secret, or the one a rotation
    replaced until that one's overlap ends (looked up only when no current secret matched).
    Found by digest (an attacker cannot steer a SHA-256 prefix, so the index lookup leaks
    nothing) and compared in constant time."""
    if not secret:
        return None
    digest = token_digest(secret)
    company = session.scalars(_BY_WEBHOOK_DIGEST, {"digest": digest}).one_or_none()
    if company is not None and company.webhook_secret_hash is not None:
        return company if digests_equal(company.webhook_secret_hash, digest) else None
    company = session.scalars(_BY_PREVIOUS_DIGEST, {"digest": digest}).first()
    if (
        company is None
        or company.previous_webhook_secret_hash is None
        or company.previous_webhook_secret_expires_at is None
        or company.previous_webhook_secret_expires_at <= utcnow()
    ):
        return None
    return company if digests_equal(company.previous_webhook_secret_hash, digest) else None
