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
from spendtrackr.core.errors import NotFound, Unauthorized
from spendtrackr.core.lru import LruCache
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
    """The company whose `source` secret this is (see `company_for_digest`)."""
    return company_for_digest(session, source, token_digest(secret)) if secret else None


def company_for_digest(session: Session, source: SecretSource, digest: str) -> Company | None:
    """The company whose `source` secret has this SHA-256 digest (`holds_secret`), its current
    one looked up first. Found by digest (an attacker cannot steer a SHA-256 prefix, so the index
    lookup leaks nothing) and compared in constant time. The process remembers the company found
    (`known_caller`)."""
    columns = _SECRETS[source]
    company = session.scalars(columns.by_current, {"digest": digest}).one_or_none()
    if company is None:
        company = session.scalars(columns.by_previous, {"digest": digest}).first()
    if company is None or not holds_secret(
        digest,
        current=getattr(company, columns.current),
        previous=getattr(company, columns.previous),
        previous_expires_at=getattr(company, columns.previous_expires_at),
    ):
        _known_callers.discard((source, digest))
        return None
    _known_callers.put((source, digest), company.id)
    return company


def holds_secret(
    digest: str,
    *,
    current: str | None,
    previous: str | None,
    previous_expires_at: datetime | None,
) -> bool:
    """Whether a company whose secret columns for a source read these holds the secret with this
    digest: its current one, or the one a rotation replaced until that one's overlap ends."""
    if current is not None and digests_equal(current, digest):
        return True
    return (
        previous is not None
        and previous_expires_at is not None
        and previous_expires_at > utcnow()
        and digests_equal(previous, digest)
    )


# The company each webhook secret this process has lately seen accepted belongs to, by the
# secret's digest. A hint, never an answer: whoever takes a company from here checks the secret
# against the company's row in a statement it sends anyway (`holds_secret`), and looks the
# digest up afresh (`company_for_digest`) when that check fails.
_known_callers: LruCache[tuple[SecretSource, str], uuid.UUID] = LruCache(10_000)


def known_caller(source: SecretSource, digest: str) -> uuid.UUID | None:
    """The company that held this secret when this process last checked it."""
    return _known_callers.get((source, digest))


def webhook_unauthorized() -> Unauthorized:
    return Unauthorized("Unauthorized webhook source", code="unauthorized_webhook", headers={})


@dataclass(frozen=True, slots=True)
class WebhookCaller:
    """A webhook's caller, whose secret may not have been checked yet.

    `company` is read, and the secret checked, when this process did not know the secret. When
    it did (`known_caller`), only the company's id is known, and the route checks the secret
    before it answers: on the company's secret columns read in a statement it sends anyway
    (`holds_secret`), or with `company_of`.
    """

    source: SecretSource
    digest: str
    company_id: uuid.UUID
    company: Company | None

    @classmethod
    def checked(cls, company: Company, source: SecretSource) -> WebhookCaller:
        """A caller whose company is known for sure (the demo's purchases, made in process)."""
        return cls(source, "", company.id, company)

    def holds_secret(
        self, current: str | None, previous: str | None, previous_expires_at: datetime | None
    ) -> bool:
        """Whether the secret sent is the company's, its secret columns for the source as just
        read (or it was checked already)."""
        return self.company is not None or holds_secret(
            self.digest, current=current, previous=previous, previous_expires_at=previous_expires_at
        )


def company_of(session: Session, caller: WebhookCaller) -> Company:
    """The caller's company, its secret checked: 401 if it is no longer the company's."""
    if caller.company is not None:
        return caller.company
    company = company_for_digest(session, caller.source, caller.digest)
    # Another company's now: what was read for the caller's company answers nothing.
    if company is None or company.id != caller.company_id:
        raise webhook_unauthorized()
    return company
