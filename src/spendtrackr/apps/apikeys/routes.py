from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from spendtrackr.apps.apikeys import flows
from spendtrackr.apps.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import NowDep
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/api-keys",
    tags=["api keys"],
    responses=errors(401, 403),
)


@router.post("", response_model=ApiKeyCreated, status_code=201, responses=errors(422))
def create_key(
    body: ApiKeyCreate, session: SessionDep, actor: AdminUser, now: NowDep
) -> ApiKeyCreated:
    """A key for a machine client (admin). It acts as the company, within its scopes, never as
    a person: it cannot approve, submit or own anything, and its actions are audited as
    `api_key:<id>`. The key is in this answer only."""
    return flows.create_key(session, actor=actor, body=body, now=now)


@router.get("", response_model=Page[ApiKeyRead])
def list_keys(session: SessionDep, actor: AdminUser, page: PageDep) -> Page[ApiKeyRead]:
    """The company's keys that are not revoked (never the keys themselves)."""
    return flows.list_keys(session, actor=actor, page=page)


@router.get("/{key_id}", response_model=ApiKeyRead, responses=errors(404))
def get_key(key_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> ApiKeyRead:
    return flows.get_key(session, actor=actor, key_id=key_id)


@router.delete("/{key_id}", status_code=204, response_class=Response, responses=errors(404))
def revoke_key(key_id: uuid.UUID, session: SessionDep, actor: AdminUser, now: NowDep) -> Response:
    """Revoke the key: its next request is refused (401)."""
    flows.revoke_key(session, actor=actor, key_id=key_id, now=now)
    return Response(status_code=204)
