"""Work on users that reaches other domains: an invite is also an email."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from spendtrackr.apps.notifications import service as notifications
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import User
from spendtrackr.core.db import utcnow


def invite(session: Session, *, user: User, ttl: timedelta) -> str:
    """A one-time invite for a user without a password; with email on, the invitee gets a link
    carrying it (the token is in the outbox only until the email is sent)."""
    token = users_service.create_invite(session, user=user, ttl=ttl)
    notifications.notify(
        session,
        company_id=user.company_id,
        user_ids=[user.id],
        kind="user.invited",
        message="You are invited to SpendTrackr: choose a password to start",
        entity_type="user",
        entity_id=user.id,
        context={
            "private_link": f"/accept-invite?token={token}",
            "link_label": "Choose your password",
            "expires": (utcnow() + ttl).date(),
        },
    )
    return token
