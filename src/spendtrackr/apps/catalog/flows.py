"""Catalog use cases that reach other domains: a category or vendor a policy names stays."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from spendtrackr.apps.catalog import service
from spendtrackr.apps.catalog.models import Category
from spendtrackr.apps.policies import service as policies_service
from spendtrackr.apps.users.models import User


def delete_item(
    session: Session, model: type[service.Item], *, actor: User, item_id: uuid.UUID
) -> None:
    """Delete a category or vendor: 404 when it is not the company's, 409 `in_use` while a
    policy's rules name it (or spends and cards refer to it)."""
    service.get_or_404(session, model, company_id=actor.company_id, item_id=item_id)
    policies_service.ensure_not_named(
        session,
        company_id=actor.company_id,
        kind="category" if model is Category else "vendor",
        item_id=item_id,
    )
    service.delete_item(
        session, model, company_id=actor.company_id, actor_id=actor.id, item_id=item_id
    )
