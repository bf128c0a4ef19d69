from __future__ import annotations

import html
import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from spendtrackr.apps.notifications import service
from spendtrackr.apps.notifications.models import NotificationDefault, NotificationPreference
from spendtrackr.apps.notifications.schemas import (
    NotificationRead,
    Preferences,
    PreferencesUpdate,
    ReadAllResult,
    Unsubscribed,
)
from spendtrackr.apps.users.deps import SIGNED_IN, AdminUser, CurrentUser
from spendtrackr.core.db import SessionDep
from spendtrackr.core.deps import SettingsDep
from spendtrackr.core.errors import NotFound, ValidationFailed
from spendtrackr.core.openapi import errors
from spendtrackr.core.pagination import Page, PageDep
from spendtrackr.core.routing import JSONRoute
from spendtrackr.core.schemas import StatusOk

router = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    prefix="/notifications",
    tags=["notifications"],
    responses=errors(401),
)


@router.get("", response_model=Page[NotificationRead])
def list_notifications(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    unread_only: Annotated[bool, Query()] = False,
) -> Page[NotificationRead]:
    """Your notifications, newest first."""
    total, items = service.list_notifications(
        session, company_id=user.company_id, user_id=user.id, unread_only=unread_only, page=page
    )
    return Page(total=total, items=[NotificationRead.model_validate(n) for n in items])


@router.post("/read-all", response_model=ReadAllResult)
def mark_all_read(session: SessionDep, user: CurrentUser) -> ReadAllResult:
    updated = service.mark_all_read(session, company_id=user.company_id, user_id=user.id)
    return ReadAllResult(updated=updated)


@router.post("/{notification_id}/read", response_model=StatusOk, responses=errors(404))
def mark_read(notification_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> StatusOk:
    service.mark_read(
        session, company_id=user.company_id, user_id=user.id, notification_id=notification_id
    )
    return StatusOk()


preferences = APIRouter(
    dependencies=SIGNED_IN,
    route_class=JSONRoute,
    tags=["notifications"],
    responses=errors(401, 422),
)


def _read(
    person: NotificationPreference | None, company: NotificationDefault | None
) -> Preferences:
    channels, digest = service.effective(person, company)
    return Preferences(channels=channels, digest=digest, locale=person.locale if person else None)


@preferences.get("/users/me/notification-preferences", response_model=Preferences)
def my_preferences(session: SessionDep, user: CurrentUser) -> Preferences:
    """Where each kind of notification reaches you (yours, else the company's defaults)."""
    return _read(
        service.preference(session, user_id=user.id),
        service.company_default(session, company_id=user.company_id),
    )


@preferences.put("/users/me/notification-preferences", response_model=Preferences)
def set_my_preferences(
    body: PreferencesUpdate, session: SessionDep, user: CurrentUser
) -> Preferences:
    """Choose `email`, `in_app`, both or neither per kind, and your digest."""
    person = service.set_preference(
        session,
        company_id=user.company_id,
        user_id=user.id,
        channels=body.channels,
        digest=body.digest,
        locale=body.locale,
    )
    return _read(person, service.company_default(session, company_id=user.company_id))


@preferences.get("/companies/me/notification-defaults", response_model=Preferences)
def company_defaults(session: SessionDep, actor: AdminUser) -> Preferences:
    """What people who have not chosen get (admins)."""
    return _read(None, service.company_default(session, company_id=actor.company_id))


@preferences.put("/companies/me/notification-defaults", response_model=Preferences)
def set_company_defaults(
    body: PreferencesUpdate, session: SessionDep, actor: AdminUser
) -> Preferences:
    """Set the company's defaults per kind and its digest (admins); people's own choices win."""
    if body.locale is not None:
        raise ValidationFailed("locale: chosen by each person", code="invalid_default")
    company = service.set_company_default(
        session, company_id=actor.company_id, channels=body.channels, digest=body.digest
    )
    return _read(None, company)


# Unsubscribe links work without a login: the link is signed for one person and one kind.
unsubscribe = APIRouter(route_class=JSONRoute, tags=["notifications"])


def _unsubscribed(session: SessionDep, settings: SettingsDep, token: str) -> str:
    kind = service.unsubscribe_by_token(session, settings.unsubscribe_key, token)
    if kind is None:
        raise NotFound("This unsubscribe link is not valid", code="invalid_unsubscribe_link")
    return kind


@unsubscribe.post(
    "/notifications/unsubscribe", response_model=Unsubscribed, responses=errors(404, 422)
)
def unsubscribe_one_click(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Query(max_length=300)],
) -> Unsubscribed:
    """One-click unsubscribe (RFC 8058), as a mail client sends it from `List-Unsubscribe`:
    this kind of email stops; it stays in the app."""
    return Unsubscribed(kind=_unsubscribed(session, settings, token))


@unsubscribe.get(
    "/notifications/unsubscribe",
    # An HTML page; its errors are JSON, as everywhere.
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}, **errors(422)},
)
def unsubscribe_page(token: Annotated[str, Query(max_length=300)]) -> HTMLResponse:
    """The page the email's link opens: a button that sends the one-click POST (a GET never
    changes anything, so a link scanner cannot unsubscribe anyone)."""
    action = html.escape(f"/notifications/unsubscribe?token={token}", quote=True)
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width"><title>Unsubscribe</title></head>'
        f'<body><form method="post" action="{action}"><p>Stop these emails? They will '
        'still appear in SpendTrackr.</p><button type="submit">Unsubscribe</button>'
        "</form></body></html>"
    )
