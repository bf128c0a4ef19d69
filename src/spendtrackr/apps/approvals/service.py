"""Approval steps of spends: created from a policy decision, opened one at a time, decided."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Subquery, func, select, union
from sqlalchemy.orm import Session

from spendtrackr.apps.approvals.models import ApprovalStep, Delegation, StepStatus
from spendtrackr.apps.approvals.schemas import ApprovalRead
from spendtrackr.apps.audit import service as audit
from spendtrackr.core.db import force_index, get_in_company_or_404, id_param, utcnow
from spendtrackr.core.errors import Conflict
from spendtrackr.core.pagination import COUNT_CAP, PageParams, counted, paginate

APPROVAL_NOT_FOUND = "Approval not found"
OPEN = (StepStatus.pending, StepStatus.waiting)


class AlreadyDecided(Conflict):
    code = "already_decided"


class NotOpenYet(Conflict):
    code = "approval_not_open"


@dataclass(frozen=True, slots=True)
class Approver:
    """Who decides a step: one user, or any active user of a role (never the submitter)."""

    spec: str
    user_id: uuid.UUID | None = None
    role: str | None = None


def create_steps(
    session: Session,
    *,
    company_id: uuid.UUID,
    spend_id: uuid.UUID,
    submitter_id: uuid.UUID,
    approvers: list[Approver],
    new_spend: bool = False,
) -> list[ApprovalStep]:
    """Append steps after any existing ones (`new_spend`: the spend has none, it was written by
    this transaction); the first new step is opened."""
    last = (
        None
        if new_spend
        else session.scalar(
            select(ApprovalStep.step)
            .where(ApprovalStep.company_id == company_id, ApprovalStep.spend_id == spend_id)
            .order_by(ApprovalStep.step.desc())
            .limit(1)
        )
    )
    start = (last or 0) + 1
    now = utcnow()
    steps = [
        ApprovalStep(
            id=uuid.uuid4(),
            company_id=company_id,
            spend_id=spend_id,
            submitter_id=submitter_id,
            step=start + i,
            approver_spec=a.spec,
            approver_id=a.user_id,
            approver_role=a.role,
            status=StepStatus.pending if i == 0 else StepStatus.waiting,
            opened_at=now if i == 0 else None,
            next_nudge_at=now + FIRST_LOOK if i == 0 else None,
        )
        for i, a in enumerate(approvers)
    ]
    session.add_all(steps)
    session.flush()
    return steps


# What an ApprovalRead shows, read as plain columns: spends are listed fifty at a time.
_READ_FIELDS = tuple(ApprovalRead.model_fields)
_READ_COLUMNS = [getattr(ApprovalStep, name) for name in _READ_FIELDS]
# Built once (as the other statements on every request's path): see core/db.py.
_STEPS_OF = force_index(
    select(*_READ_COLUMNS)
    .where(
        ApprovalStep.company_id == id_param("company_id"),
        ApprovalStep.spend_id.in_(id_param("spend_ids", expanding=True)),
    )
    .order_by(ApprovalStep.spend_id, ApprovalStep.step),
    ApprovalStep,
    "ix_approval_step_company_spend",
)


def steps_of(
    session: Session, *, company_id: uuid.UUID, spend_ids: list[uuid.UUID]
) -> list[ApprovalRead]:
    """The approval steps of these spends, in order, as read models (one query, no entities)."""
    if not spend_ids:
        return []
    rows = session.execute(_STEPS_OF, {"company_id": company_id, "spend_ids": spend_ids})
    # Validated from the row zipped with the field names: a Row's attribute access is several
    # times slower, and this runs for every step of a page.
    return [ApprovalRead.model_validate(dict(zip(_READ_FIELDS, row, strict=True))) for row in rows]


def close_open_steps(session: Session, *, company_id: uuid.UUID, spend_id: uuid.UUID) -> None:
    for step in session.scalars(
        select(ApprovalStep).where(
            ApprovalStep.company_id == company_id,
            ApprovalStep.spend_id == spend_id,
            ApprovalStep.status.in_(OPEN),
        )
    ):
        step.status = StepStatus.skipped


def get_step_or_404(
    session: Session, *, company_id: uuid.UUID, approval_id: uuid.UUID, for_update: bool = False
) -> ApprovalStep:
    return get_in_company_or_404(
        session,
        ApprovalStep,
        approval_id,
        company_id,
        detail=APPROVAL_NOT_FOUND,
        for_update=for_update,
    )


def may_decide(
    step: ApprovalStep,
    *,
    user_id: uuid.UUID,
    role: str,
    for_whom: Collection[uuid.UUID] = (),
) -> bool:
    """`for_whom`: the people `user_id` stands in for today (their delegations)."""
    if step.submitter_id == user_id:
        return False  # nobody approves their own spend, not even an admin or a delegate
    return (
        step.approver_id == user_id
        or (step.approver_id is not None and step.approver_id in for_whom)
        or step.approver_role == role
        or step.escalated_to_id == user_id
        or step.escalated_to_role == role
        or role == "admin"
    )


def decide(step: ApprovalStep, *, user_id: uuid.UUID, approved: bool, comment: str | None) -> None:
    if step.status == StepStatus.waiting:
        raise NotOpenYet("This approval step opens once the steps before it are approved")
    if step.status == StepStatus.skipped:
        raise AlreadyDecided("This approval step was closed: its spend was decided or changed")
    if step.status != StepStatus.pending:
        raise AlreadyDecided("This approval step is already decided")
    step.status = StepStatus.approved if approved else StepStatus.rejected
    step.decided_by = user_id
    step.decided_at = utcnow()
    step.comment = comment


def open_next(
    session: Session, *, company_id: uuid.UUID, spend_id: uuid.UUID
) -> ApprovalStep | None:
    step = session.scalars(
        select(ApprovalStep)
        .where(
            ApprovalStep.company_id == company_id,
            ApprovalStep.spend_id == spend_id,
            ApprovalStep.status == StepStatus.waiting,
        )
        .order_by(ApprovalStep.step)
        .limit(1)
    ).one_or_none()
    if step is not None:
        step.status = StepStatus.pending
        step.opened_at = utcnow()
        step.next_nudge_at = step.opened_at + FIRST_LOOK
    return step


# The inbox's order, newest first: each index it reads ends in `created_at` (then the key).
_INBOX_ORDER = (ApprovalStep.created_at.desc(), ApprovalStep.id.desc())


def _ways_mine(
    user_id: uuid.UUID, role: str, for_whom: Collection[uuid.UUID]
) -> list[tuple[ColumnElement[bool], str]]:
    """Each way a step can be the caller's to decide, with the index that lists it in order."""
    ways = [
        (ApprovalStep.approver_id == user_id, "ix_approval_step_company_status_approver"),
        (ApprovalStep.approver_role == role, "ix_approval_step_company_status_role"),
        (ApprovalStep.escalated_to_id == user_id, "ix_approval_step_company_status_escalated_to"),
        (
            ApprovalStep.escalated_to_role == role,
            "ix_approval_step_company_status_escalated_role",
        ),
    ]
    if for_whom:
        ways.append(
            (
                ApprovalStep.approver_id.in_(list(for_whom)),
                "ix_approval_step_company_status_approver",
            )
        )
    return ways


def _mine(
    company_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str,
    status: StepStatus,
    for_whom: Collection[uuid.UUID],
    *,
    limit: int | None,
    columns: tuple[Any, ...] = (ApprovalStep.id, ApprovalStep.created_at),
) -> Subquery:
    """The caller's steps in `status` as a union of one indexed branch per way a step is theirs,
    each branch cut at `limit` rows in the inbox's order (or whole): an OR of the ways would read
    every step of the company in that status (no one index holds them all) and sort them."""
    branches = []
    for way, index in _ways_mine(user_id, role, for_whom):
        branch = select(*columns).where(
            ApprovalStep.company_id == company_id,
            ApprovalStep.status == status,
            way,
            ApprovalStep.submitter_id != user_id,
        )
        if limit is not None:
            branch = branch.order_by(*_INBOX_ORDER).limit(limit)
        # A branch with its own ORDER BY and LIMIT is a union member only as a subquery.
        branch = force_index(branch, ApprovalStep, index)
        branches.append(select(*branch.subquery().c))
    return union(*branches).subquery()


def list_actionable(
    session: Session,
    *,
    company_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str,
    status: StepStatus,
    page: PageParams,
    for_whom: Collection[uuid.UUID] = (),
) -> tuple[int, list[ApprovalStep]]:
    """Steps the caller can act on (admins: every step of the company), theirs and those of
    the people they stand in for, newest first."""
    # Whatever changes a company's steps (a submission, a decision, an escalation, a
    # reassignment, a delegation) writes an audit entry with it: the chain head's position is
    # the version of the data the total depends on, as for the spend list.
    version = audit.head_seq(session, company_id=company_id)
    count_key = ("approvals", company_id, version, user_id, role, status, frozenset(for_whom))
    if role == "admin":
        every = select(ApprovalStep).where(
            ApprovalStep.company_id == company_id, ApprovalStep.status == status
        )
        stmt = force_index(every, ApprovalStep, "ix_approval_step_company_status_created")
        return paginate(session, stmt.order_by(*_INBOX_ORDER), page, count_key=count_key)

    def count() -> int | None:
        # Up to COUNT_CAP + 1 from each branch: when any holds more, so does their union. Built
        # only when no total is kept.
        capped = _mine(
            company_id,
            user_id,
            role,
            status,
            for_whom,
            limit=COUNT_CAP + 1,
            columns=(ApprovalStep.id,),
        )
        return session.scalar(select(func.count()).select_from(capped))

    total = min(counted(count_key, count), COUNT_CAP + 1)
    if not total:
        return 0, []
    ids = _mine(company_id, user_id, role, status, for_whom, limit=page.offset + page.limit)
    steps = session.scalars(
        select(ApprovalStep)
        .join(ids, ApprovalStep.id == ids.c.id)
        .order_by(ids.c.created_at.desc(), ids.c.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return total, list(steps)


# The worker's first look at an open step, when it learns the company's reminder and
# escalation hours (reading them as the step opens would cost every submission a query).
FIRST_LOOK = timedelta(hours=1)


def due_for_nudge(session: Session, *, now: datetime, limit: int) -> list[ApprovalStep]:
    """Open steps the worker should look at now, locked (another worker takes others)."""
    return list(
        session.scalars(
            select(ApprovalStep)
            .where(ApprovalStep.status == StepStatus.pending, ApprovalStep.next_nudge_at <= now)
            .order_by(ApprovalStep.next_nudge_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


# --- delegation -----------------------------------------------------------------------------------


def delegation_of(session: Session, *, user_id: uuid.UUID) -> Delegation | None:
    return session.get(Delegation, user_id)


def delegate_today(
    session: Session, *, company_id: uuid.UUID, user_id: uuid.UUID, today: date
) -> uuid.UUID | None:
    """Who stands in for `user_id` today, if anyone."""
    found = session.get(Delegation, user_id)
    if found is None or found.company_id != company_id:
        return None
    return found.delegate_id if found.starts_on <= today <= found.ends_on else None


def standing_in_for(
    session: Session, *, company_id: uuid.UUID, delegate_id: uuid.UUID, today: date
) -> list[uuid.UUID]:
    """The people `delegate_id` stands in for today."""
    return list(
        session.scalars(
            select(Delegation.user_id).where(
                Delegation.company_id == company_id,
                Delegation.delegate_id == delegate_id,
                Delegation.starts_on <= today,
                Delegation.ends_on >= today,
            )
        )
    )


def set_delegation(
    session: Session,
    *,
    company_id: uuid.UUID,
    user_id: uuid.UUID,
    delegate_id: uuid.UUID,
    starts_on: date,
    ends_on: date,
    actor_id: uuid.UUID,
) -> Delegation:
    found = session.get(Delegation, user_id, with_for_update=True)
    if found is None:
        found = Delegation(user_id=user_id, company_id=company_id, created_by=actor_id)
        session.add(found)
    found.delegate_id, found.starts_on, found.ends_on = delegate_id, starts_on, ends_on
    found.created_by = actor_id
    session.flush()
    audit.record_change(
        session,
        found,
        "delegation.set",
        actor_id=actor_id,
        metadata={"delegate_id": delegate_id, "starts_on": starts_on, "ends_on": ends_on},
    )
    return found


def clear_delegation(session: Session, *, delegation: Delegation, actor_id: uuid.UUID) -> None:
    session.delete(delegation)
    audit.record_change(session, delegation, "delegation.cleared", actor_id=actor_id)


def reassign(step: ApprovalStep, *, approver_id: uuid.UUID) -> None:
    step.approver_id = approver_id
    step.approver_role = None
    step.escalated_to_id = None
    step.escalated_to_role = None


def waiting_for(
    session: Session, *, company_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> tuple[int, datetime | None]:
    """How many open steps `user_id` may decide (named, by role, or escalated to them; admins:
    none counted as theirs unless named), and since when the oldest has waited."""
    mine = _mine(
        company_id,
        user_id,
        role,
        StepStatus.pending,
        (),
        limit=None,
        columns=(ApprovalStep.id, ApprovalStep.opened_at),
    )
    count, oldest = session.execute(select(func.count(), func.min(mine.c.opened_at))).one()
    return int(count or 0), oldest
