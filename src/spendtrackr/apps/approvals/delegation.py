"""Out of office: who stands in for whom, set by the person or an admin. Resolved when read
(`approvals.flows`): a delegate sees and decides the steps of the person they stand in for
today, so nothing moves when a delegation starts or ends."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from spendtrackr.apps.approvals import flows
from spendtrackr.apps.approvals import service as approvals_service
from spendtrackr.apps.approvals.models import Delegation
from spendtrackr.apps.approvals.schemas import DelegationRead, DelegationSet
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import User
from spendtrackr.core.errors import NotFound, ValidationFailed


def _delegation_read(found: Delegation) -> DelegationRead:
    today = flows.today()
    return DelegationRead(
        user_id=found.user_id,
        delegate_id=found.delegate_id,
        starts_on=found.starts_on,
        ends_on=found.ends_on,
        active=found.starts_on <= today <= found.ends_on,
    )


def get_delegation(session: Session, *, actor: User, user_id: uuid.UUID) -> DelegationRead:
    users_service.get_user_or_404(session, company_id=actor.company_id, user_id=user_id)
    found = approvals_service.delegation_of(session, user_id=user_id)
    if found is None:
        raise NotFound("No delegation", code="no_delegation")
    return _delegation_read(found)


def set_delegation(
    session: Session, *, actor: User, user_id: uuid.UUID, body: DelegationSet
) -> DelegationRead:
    """Someone stands in for `user_id` between two dates: an active user of the company, not
    themselves."""
    users_service.get_user_or_404(session, company_id=actor.company_id, user_id=user_id)
    if body.ends_on < body.starts_on:
        raise ValidationFailed("ends_on: before starts_on", code="invalid_dates")
    if body.ends_on < flows.today():
        raise ValidationFailed("ends_on: already past", code="invalid_dates")
    if body.delegate_id == user_id:
        raise ValidationFailed("delegate_id: not oneself", code="invalid_delegate")
    delegate = users_service.active_user(
        session, company_id=actor.company_id, user_id=body.delegate_id
    )
    if delegate is None:
        raise ValidationFailed(
            "delegate_id: not an active user of this company", code="invalid_delegate"
        )
    found = approvals_service.set_delegation(
        session,
        company_id=actor.company_id,
        user_id=user_id,
        delegate_id=delegate.id,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        actor_id=actor.id,
    )
    return _delegation_read(found)


def clear_delegation(session: Session, *, actor: User, user_id: uuid.UUID) -> None:
    users_service.get_user_or_404(session, company_id=actor.company_id, user_id=user_id)
    found = approvals_service.delegation_of(session, user_id=user_id)
    if found is None:
        raise NotFound("No delegation", code="no_delegation")
    approvals_service.clear_delegation(session, delegation=found, actor_id=actor.id)
