"""Rotating refresh tokens: one family per session, reuse of a spent token revokes the family."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from spendtrackr.apps.auth.models import RefreshToken
from spendtrackr.core.db import utcnow
from spendtrackr.core.security import new_opaque_token, token_digest


def issue_refresh_token(session: Session, *, session_id: uuid.UUID) -> str:
    token = new_opaque_token(32)
    session.add(RefreshToken(session_id=session_id, token_hash=token_digest(token)))
    return token


@dataclass(frozen=True, slots=True)
class Spent:
    session_id: uuid.UUID
    reused: bool  # True when the token had already been spent: a replay, revoke the family


def spend_refresh_token(session: Session, *, token: str) -> Spent | None:
    """Mark a refresh token used, atomically. None when the token is unknown."""
    row = session.execute(
        select(RefreshToken.id, RefreshToken.session_id).where(
            RefreshToken.token_hash == token_digest(token)
        )
    ).one_or_none()
    if row is None:
        return None
    token_id, session_id = row
    # A conditional update, so that two concurrent refreshes with one token cannot both win.
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=utcnow())
    )
    return Spent(session_id=session_id, reused=result.rowcount != 1)  # type: ignore[attr-defined]


def session_of(session: Session, *, token: str) -> uuid.UUID | None:
    return session.scalars(
        select(RefreshToken.session_id).where(RefreshToken.token_hash == token_digest(token))
    ).one_or_none()
