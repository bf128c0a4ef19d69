from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser, FinanceUser, ReadSession
from spendtrackr.apps.webhooks import flows
from spendtrackr.apps.webhooks.models import ALL, TYPES
from spendtrackr.apps.webhooks.schemas import (
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
    EventPage,
    RotatedSecret,
    SecretRotation,
)
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import NowDep, SettingsDep
from spendtrackr.core.errors import ValidationFailed
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute

endpoints = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/webhook-endpoints",
    tags=["webhooks"],
    responses=errors(401, 403),
)
deliveries = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/webhook-deliveries",
    tags=["webhooks"],
    responses=errors(401, 403),
)
feed = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/events",
    tags=["events"],
    responses=errors(401, 403),
)


@endpoints.post("", response_model=EndpointCreated, status_code=201, responses=errors(422))
def create_endpoint(
    body: EndpointCreate, session: SessionDep, actor: AdminUser, settings: SettingsDep
) -> EndpointCreated:
    """Send the company's events to `url`, signed as Standard Webhooks specifies
    (`webhook-id`, `webhook-timestamp`, `webhook-signature`). The secret is in this answer only.
    The endpoint receives the events that happen after it is created. Private, loopback and
    link-local destinations are refused (422 `url_not_allowed` for an address in the URL; a
    name resolving to one fails each attempt)."""
    return flows.create_endpoint(session, actor=actor, body=body, settings=settings)


@endpoints.get("", response_model=Page[EndpointRead])
def list_endpoints(session: SessionDep, actor: AdminUser, page: PageDep) -> Page[EndpointRead]:
    return flows.list_endpoints(session, actor=actor, page=page)


@endpoints.get("/{endpoint_id}", response_model=EndpointRead, responses=errors(404))
def get_endpoint(endpoint_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> EndpointRead:
    return flows.get_endpoint(session, actor=actor, endpoint_id=endpoint_id)


@endpoints.patch("/{endpoint_id}", response_model=EndpointRead, responses=errors(404, 422))
def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    session: SessionDep,
    actor: AdminUser,
    settings: SettingsDep,
) -> EndpointRead:
    """Change the URL, the event types, the description, or turn it off and on (`enabled`).
    Turned on again, it receives what happened while it was off."""
    return flows.update_endpoint(
        session, actor=actor, endpoint_id=endpoint_id, body=body, settings=settings
    )


@endpoints.delete("/{endpoint_id}", status_code=204, response_class=Response, responses=errors(404))
def delete_endpoint(endpoint_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> Response:
    """Delete the endpoint and its delivery history."""
    flows.delete_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    return Response(status_code=204)


@endpoints.post(
    "/{endpoint_id}/rotate-secret",
    response_model=RotatedSecret,
    status_code=201,
    responses=errors(404, 422),
)
def rotate_secret(
    endpoint_id: uuid.UUID,
    session: SessionDep,
    actor: AdminUser,
    settings: SettingsDep,
    body: SecretRotation | None = None,
) -> RotatedSecret:
    """A new secret, shown once. Until `previous_valid_until` (default a day) every delivery
    carries two signatures, one per secret, so the receiver can switch at its own pace."""
    valid_for = timedelta(seconds=(body or SecretRotation()).previous_expires_in_seconds)
    return flows.rotate_secret(
        session,
        actor=actor,
        endpoint_id=endpoint_id,
        previous_valid_for=valid_for,
        settings=settings,
    )


@endpoints.get(
    "/{endpoint_id}/deliveries", response_model=Page[DeliveryRead], responses=errors(404)
)
def list_deliveries(
    endpoint_id: uuid.UUID, session: SessionDep, actor: AdminUser, page: PageDep
) -> Page[DeliveryRead]:
    """The endpoint's deliveries, newest first, each with its attempts (status code, latency,
    error)."""
    return flows.list_deliveries(session, actor=actor, endpoint_id=endpoint_id, page=page)


@deliveries.post(
    "/{delivery_id}/retry", response_model=DeliveryRead, status_code=202, responses=errors(404)
)
def retry_delivery(delivery_id: uuid.UUID, session: SessionDep, actor: AdminUser) -> DeliveryRead:
    """Send the delivery again at the worker's next turn (also one that succeeded or failed
    for good)."""
    return flows.retry_delivery(session, actor=actor, delivery_id=delivery_id)


@feed.get("", response_model=EventPage, responses=errors(422))
def list_events(
    session: ReadSession,
    actor: FinanceUser,
    settings: SettingsDep,
    now: NowDep,
    after: Annotated[
        int, Query(ge=0, description="A `next_cursor` from before (0: from the oldest kept)")
    ] = 0,
    types: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated event types")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EventPage:
    """The company's events in the order they happened, as webhooks send them, for a client
    that polls instead (finance, admin): `after` the last `next_cursor`, kept
    `EVENT_RETENTION_DAYS` (30)."""
    wanted = [t.strip() for t in (types or "").split(",") if t.strip()]
    unknown = sorted(set(wanted) - {*TYPES, ALL})
    if unknown:
        raise ValidationFailed(
            f"types: unknown event types: {', '.join(unknown)}", code="invalid_types"
        )
    return flows.list_events(
        session,
        actor=actor,
        after=after,
        types=wanted,
        limit=limit,
        now=now,
        retention=timedelta(days=settings.event_retention_days),
    )
