"""Companies (tenants): created at signup, read and renamed by their admins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.companies.models import Company
from spendtrackr.core.db import apply_changes, id_param, utcnow
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


# Built once (see core/db.py): every spend written reads it.
_SHARED = (
    select(Company)
    .where(Company.id == id_param("company_id"))
    .with_for_update(read=True)
    .execution_options(populate_existing=True)
)


def share_company(session: Session, company_id: uuid.UUID) -> Company:
    """The company, under a shared lock held to the commit, for a transaction that writes a
    spend: what the spend is measured by (the base currency, the budgets) cannot change until it
    commits, since changing them takes the row's exclusive lock (`get_company_or_404` with
    `for_update`)."""
    company = session.scalars(_SHARED, {"company_id": company_id}).one_or_none()
    if company is None:
        raise NotFound("Company not found")
    return company


def names(session: Session, *, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = session.execute(select(Company.id, Company.name).where(Company.id.in_(ids)))
    return {row.id: row.name for row in rows}


def update_company(
    session: Session, *, company_id: uuid.UUID, actor_id: uuid.UUID, changes: dict[str, object]
) -> Company:
    company = get_company_or_404(session, company_id, for_update=True)
    diff = apply_changes(company, changes)
    audit.record_change(
        session, company, "company.updated", actor_id=actor_id, metadata={"changes": diff}
    )
    return company


class SecretSource(StrEnum):
    """Who calls a company's webhooks; each source has its own secret."""

    card_network = "card_network"
    directory = "directory"


@dataclass(frozen=True, slots=True)
class _SecretColumns:
    rotated: str  # the audit action of a rotation
    current: str
    previous: str
    previous_expires_at: str
    by_current: Select[Company]
    by_previous: Select[Company]


def _columns(rotated: str, current: str, previous: str, expires: str) -> _SecretColumns:
    # Built once (see core/db.py): every card authorization starts with the first lookup.
    return _SecretColumns(
        rotated=rotated,
        current=current,
        previous=previous,
        previous_expires_at=expires,
        by_current=select(Company).where(getattr(Company, current) == bindparam("digest")),
        by_previous=select(Company).where(getattr(Company, previous) == bindparam("digest")),
    )


_SECRETS = {
    SecretSource.card_network: _columns(
        "company.webhook_secret_rotated",
        "webhook_secret_hash",
        "previous_webhook_secret_hash",
        "previous_webhook_secret_expires_at",
    ),
    SecretSource.directory: _columns(
        "company.directory_secret_rotated",
        "directory_secret_hash",
        "previous_directory_secret_hash",
        "previous_directory_secret_expires_at",
    ),
}


def rotate_secret(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    source: SecretSource,
    previous_valid_for: timedelta = timedelta(0),
) -> tuple[str, datetime | None]:
    """A new secret for one source replaces its current one, which stays valid for
    `previous_valid_for` (by default it stops at once), so that the caller can be given the new
    one without a gap. Only SHA-256 digests are kept. Returns the secret and when the previous
    one stops.

    The company's row is read locked: a rotation running at the same time then replaces this
    one's secret (keeping it as the previous one) instead of the secret both would have read,
    which left the first secret handed out invalid at once."""
    columns = _SECRETS[source]
    company = get_company_or_404(session, company_id, for_update=True)
    secret = f"whsec_{new_opaque_token(32)}"
    current = getattr(company, columns.current)
    overlap = previous_valid_for > timedelta(0) and current is not None
    until = utcnow() + previous_valid_for if overlap else None
    setattr(company, columns.previous, current if overlap else None)
    setattr(company, columns.previous_expires_at, until)
    setattr(company, columns.current, token_digest(secret))
    audit.record_change(
        session,
        company,
        columns.rotated,
        actor_id=actor_id,
        metadata={"previous_valid_until": until},
    )
    return secret, until


def company_for_secret(
    session: Session, source: SecretSource, secret: str | None
) -> Company | None:
    """The company whose `source` secret this is: its current one, or the one a rotation
    replaced until that one's overlap ends (looked up only when no current secret matched).
    Found by digest (an attacker cannot steer a SHA-256 prefix, so the index lookup leaks
    nothing) and compared in constant time."""
    if not secret:
        return None
    columns = _SECRETS[source]
    digest = token_digest(secret)
    company = session.scalars(columns.by_current, {"digest": digest}).one_or_none()
    if company is not None:
        stored = getattr(company, columns.current)
        return company if stored is not None and digests_equal(stored, digest) else None
    company = session.scalars(columns.by_previous, {"digest": digest}).first()
    if company is None:
        return None
    previous = getattr(company, columns.previous)
    expires_at = getattr(company, columns.previous_expires_at)
    if previous is None or expires_at is None or expires_at <= utcnow():
        return None
    return company if digests_equal(previous, digest) else None
