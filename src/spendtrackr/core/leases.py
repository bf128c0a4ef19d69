"""Leases: a scheduled job that must run once however many workers there are holds its row's
lease while it runs (taken with one conditional UPDATE; a worker that dies lets it expire)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from spendtrackr.core.db import Base


class JobLease(Base):
    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


def acquire(session: Session, *, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Whether `holder` holds the lease `name` until `now + ttl` (taken, or renewed)."""
    taken = session.execute(
        update(JobLease)
        .where(JobLease.name == name, or_(JobLease.expires_at < now, JobLease.holder == holder))
        .values(holder=holder, expires_at=now + ttl)
    )
    if taken.rowcount:  # type: ignore[attr-defined]
        return True
    try:
        with session.begin_nested():
            session.execute(insert(JobLease).values(name=name, holder=holder, expires_at=now + ttl))
    except IntegrityError:
        return False  # someone else holds it
    return True


def release(session: Session, *, name: str, holder: str, now: datetime) -> None:
    session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=now)
    )
