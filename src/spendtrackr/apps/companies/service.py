"""Companies (tenants): created at signup, read and renamed by their admins."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.companies.models import Company
from spendtrackr.core.db import apply_changes
from spendtrackr.core.errors import NotFound
from spendtrackr.core.security import digests_equal, new_opaque_token, token_digest


def create_company(session: Session, *, name: str, base_currency: str) -> Company:
    company = Company(id=uuid.uuid4(), name=name, base_currency=base_currency)
    session.add(company)
    session.flush()
    return company


def get_company_or_404(session: Session, company_id: uuid.UUID) -> Company:
    company = session.get(Company, company_id)
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


def rotate_webhook_secret(session: Session, *, company_id: uuid.UUID, actor_id: uuid.UUID) -> str:
    """A new secret replaces the previous one at once; only its SHA-256 is kept."""
    company = get_company_or_404(session, company_id)
    secret = f"whsec_{new_opaque_token(32)}"
    company.webhook_secret_hash = token_digest(secret)
    audit.record(
        session,
        company_id=company.id,
        actor_id=actor_id,
        action="company.webhook_secret_rotated",
        entity_type="company",
        entity_id=company.id,
    )
    return secret


# Built once (see core/db.py): every card authorization starts with it.
_BY_WEBHOOK_DIGEST = select(Company).where(Company.webhook_secret_hash == bindparam("digest"))


def company_for_webhook_secret(session: Session, secret: str | None) -> Company | None:
    """The company a webhook secret belongs to. Looked up by digest (an attacker cannot steer a
    SHA-256 prefix, so the index lookup leaks nothing) and compared in constant time."""
    if not secret:
        return None
    digest = token_digest(secret)
    company = session.scalars(_BY_WEBHOOK_DIGEST, {"digest": digest}).one_or_none()
    if company is None or company.webhook_secret_hash is None:
        return None
    return company if digests_equal(company.webhook_secret_hash, digest) else None
