"""Vendors and categories: per-company reference lists with unique names."""

from __future__ import annotations

import functools
import uuid
from typing import TypeVar

from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.core.db import apply_changes, get_in_company_or_404, id_param
from spendtrackr.core.errors import Conflict
from spendtrackr.core.pagination import PageParams, paginate

Item = TypeVar("Item", Vendor, Category)

_KIND = {Vendor: "vendor", Category: "category"}


class NameTaken(Conflict):
    code = "name_taken"


class InUse(Conflict):
    code = "in_use"


def get_or_404(
    session: Session, model: type[Item], *, company_id: uuid.UUID, item_id: uuid.UUID
) -> Item:
    kind = _KIND[model]
    return get_in_company_or_404(
        session, model, item_id, company_id, detail=f"{kind.capitalize()} not found"
    )


def list_items(
    session: Session, model: type[Item], *, company_id: uuid.UUID, page: PageParams
) -> tuple[int, list[Item]]:
    stmt = select(model).where(model.company_id == company_id)
    return paginate(session, stmt.order_by(model.created_at.desc(), model.id), page)


def _save(session: Session, item: Vendor | Category) -> None:
    try:
        with session.begin_nested():
            session.add(item)
            session.flush()
    except IntegrityError:
        raise NameTaken(f"A {_KIND[type(item)]} with this name already exists") from None


def create_item(
    session: Session,
    model: type[Item],
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    fields: dict[str, object],
) -> Item:
    item = model(id=uuid.uuid4(), company_id=company_id, **fields)
    _save(session, item)
    kind = _KIND[model]
    audit.record_change(session, item, f"{kind}.created", actor_id=actor_id, metadata=fields)
    return item


def update_item(
    session: Session,
    model: type[Item],
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    item_id: uuid.UUID,
    changes: dict[str, object],
) -> Item:
    item = get_or_404(session, model, company_id=company_id, item_id=item_id)
    diff = apply_changes(item, changes)
    _save(session, item)
    kind = _KIND[model]
    audit.record_change(
        session, item, f"{kind}.updated", actor_id=actor_id, metadata={"changes": diff}
    )
    return item


def delete_item(
    session: Session,
    model: type[Item],
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    item_id: uuid.UUID,
) -> None:
    item = get_or_404(session, model, company_id=company_id, item_id=item_id)
    kind = _KIND[model]
    try:
        with session.begin_nested():
            session.delete(item)
            session.flush()
    except IntegrityError:
        raise InUse(f"This {kind} is referenced by spends or cards and cannot be deleted") from None
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action=f"{kind}.deleted",
        entity_type=kind,
        entity_id=item_id,
        metadata={"name": item.name},
    )


def find_by_name(
    session: Session, model: type[Item], *, company_id: uuid.UUID, name: str
) -> Item | None:
    return session.scalars(_by_name(model), {"company_id": company_id, "name": name}).one_or_none()


@functools.cache
def _by_name(model: type[Item]) -> Select[Item]:
    # Built once per model (see core/db.py): card authorizations look their merchant up by name.
    return select(model).where(
        model.company_id == id_param("company_id"), model.name == bindparam("name")
    )


def names(
    session: Session, model: type[Item], *, company_id: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(model.id, model.name).where(model.company_id == company_id, model.id.in_(ids))
    )
    return {row.id: row.name for row in rows}
