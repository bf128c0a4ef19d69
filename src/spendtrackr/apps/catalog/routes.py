"""Vendors (admin) and categories (admin writes; every role reads, to pick one for a spend)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from spendtrackr.apps.catalog import flows, service
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.catalog.schemas import (
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    VendorCreate,
    VendorRead,
    VendorUpdate,
)
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser, CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import Message

vendors = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/vendors",
    tags=["vendors"],
    responses=errors(401, 403),
)
categories = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/categories",
    tags=["categories"],
    responses=errors(401, 403),
)


@vendors.get("", response_model=Page[VendorRead])
def list_vendors(session: SessionDep, actor: AdminUser, page: PageDep) -> Page[VendorRead]:
    total, items = service.list_items(session, Vendor, company_id=actor.company_id, page=page)
    return Page(total=total, items=[VendorRead.model_validate(v) for v in items])


@vendors.post("", response_model=VendorRead, status_code=201, responses=errors(409, 422))
def create_vendor(body: VendorCreate, session: SessionDep, actor: AdminUser) -> VendorRead:
    """Names are unique per company (409 `name_taken`)."""
    vendor = service.create_item(
        session, Vendor, company_id=actor.company_id, actor_id=actor.id, fields=body.model_dump()
    )
    return VendorRead.model_validate(vendor)


@vendors.get("/{vendor_id}", response_model=VendorRead, responses=errors(404))
def get_vendor(vendor_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> VendorRead:
    return VendorRead.model_validate(
        service.get_or_404(session, Vendor, company_id=actor.company_id, item_id=vendor_id)
    )


@vendors.patch("/{vendor_id}", response_model=VendorRead, responses=errors(404, 409, 422))
def update_vendor(
    vendor_id: uuid.UUID, body: VendorUpdate, session: SessionDep, actor: AdminUser
) -> VendorRead:
    vendor = service.update_item(
        session,
        Vendor,
        company_id=actor.company_id,
        actor_id=actor.id,
        item_id=vendor_id,
        changes=body.changes(),
    )
    return VendorRead.model_validate(vendor)


@vendors.delete("/{vendor_id}", response_model=Message, responses=errors(404, 409))
def delete_vendor(vendor_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> Message:
    """409 `in_use` while spends or cards refer to it, or a policy's rules name it."""
    flows.delete_item(session, Vendor, actor=actor, item_id=vendor_id)
    return Message(message="Deleted successfully")


@categories.get("", response_model=Page[CategoryRead])
def list_categories(session: SessionDep, user: CurrentUser, page: PageDep) -> Page[CategoryRead]:
    total, items = service.list_items(session, Category, company_id=user.company_id, page=page)
    return Page(total=total, items=[CategoryRead.model_validate(c) for c in items])


@categories.post("", response_model=CategoryRead, status_code=201, responses=errors(409, 422))
def create_category(body: CategoryCreate, session: SessionDep, actor: AdminUser) -> CategoryRead:
    """`gl_code` is the ledger account that the accounting export debits."""
    category = service.create_item(
        session, Category, company_id=actor.company_id, actor_id=actor.id, fields=body.model_dump()
    )
    return CategoryRead.model_validate(category)


@categories.get("/{category_id}", response_model=CategoryRead, responses=errors(404))
def get_category(category_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> CategoryRead:
    return CategoryRead.model_validate(
        service.get_or_404(session, Category, company_id=user.company_id, item_id=category_id)
    )


@categories.patch("/{category_id}", response_model=CategoryRead, responses=errors(404, 409, 422))
def update_category(
    category_id: uuid.UUID, body: CategoryUpdate, session: SessionDep, actor: AdminUser
) -> CategoryRead:
    category = service.update_item(
        session,
        Category,
        company_id=actor.company_id,
        actor_id=actor.id,
        item_id=category_id,
        changes=body.changes(),
    )
    return CategoryRead.model_validate(category)


@categories.delete("/{category_id}", response_model=Message, responses=errors(404, 409))
def delete_category(category_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> Message:
    """409 `in_use` while spends or cards refer to it, or a policy's rules name it."""
    flows.delete_item(session, Category, actor=actor, item_id=category_id)
    return Message(message="Deleted successfully")
