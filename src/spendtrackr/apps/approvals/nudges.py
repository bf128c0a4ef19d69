"""The worker's look at open steps: reminders after the company's reminder hours (then daily),
escalation after its escalation hours (the approver's manager, else the admins), and re-routing
a step whose approver went away. Each step is taken by one worker (`SKIP LOCKED`) and says
when it wants to be looked at again."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from spendtrackr.apps.approvals import flows
from spendtrackr.apps.approvals import service as approvals_service
from spendtrackr.apps.approvals.models import ApprovalStep
from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.notifications import service as notifications
from spendtrackr.apps.spends import service as spends_service
from spendtrackr.apps.spends.models import Spend
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import User
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import session_scope, utcnow

REMIND_EVERY = timedelta(days=1)


def nudge_due(
    factory: sessionmaker[Session], *, now: datetime | None = None, batch: int = 100
) -> int:
    """Remind the approvers of steps pending past the company's `approval_reminder_hours` (then
    once a day), and escalate those pending past `approval_escalation_hours`. Each step is
    taken by one worker (`SKIP LOCKED`) and looked at again when it next needs to be."""
    at = now or utcnow()
    with session_scope(factory) as session:
        steps = approvals_service.due_for_nudge(session, now=at, limit=batch)
        companies: dict[uuid.UUID, Company] = {}
        for step in steps:
            company = companies.get(step.company_id) or companies_service.get_company_or_404(
                session, step.company_id
            )
            companies[company.id] = company
            opened = step.opened_at or step.created_at
            remind_at = opened + timedelta(hours=company.approval_reminder_hours)
            escalate_at = opened + timedelta(hours=company.approval_escalation_hours)
            spend = spends_service.get_spend_or_404(
                session, company_id=step.company_id, spend_id=step.spend_id
            )
            _reroute_if_stuck(session, spend, step)
            if step.escalated_at is None and at >= escalate_at:
                _escalate(session, spend, step, at, hours=company.approval_escalation_hours)
            elif at >= remind_at and (
                step.reminded_at is None or step.reminded_at + REMIND_EVERY <= at
            ):
                _remind(session, spend, step, at)
            upcoming = [remind_at if step.reminded_at is None else step.reminded_at + REMIND_EVERY]
            if step.escalated_at is None:
                upcoming.append(escalate_at)
            step.next_nudge_at = max(min(upcoming), at + timedelta(minutes=1))
    return len(steps)


def _deciders(session: Session, step: ApprovalStep) -> list[uuid.UUID]:
    """Who may decide the step now: its approvers and, once escalated, whom it went to."""
    ids = flows.approver_ids(session, step)
    if step.escalated_to_id is not None:
        ids.append(step.escalated_to_id)
    if step.escalated_to_role is not None:
        ids += users_service.active_ids_with_role(
            session,
            company_id=step.company_id,
            role=step.escalated_to_role,
            exclude=step.submitter_id,
        )
    return list(dict.fromkeys(ids))


def _remind(session: Session, spend: Spend, step: ApprovalStep, at: datetime) -> None:
    step.reminded_at = at
    waiting = int((at - (step.opened_at or step.created_at)).total_seconds() // 3600)
    notifications.notify(
        session,
        company_id=spend.company_id,
        user_ids=_deciders(session, step),
        kind="approval.reminder",
        message=f"Still waiting for your approval ({waiting} h): "
        f"{quantize(spend.amount, spend.currency)} {spend.currency} {spend.description}".strip(),
        entity_type="approval",
        entity_id=step.id,
        context={**flows.spend_context(session, spend), "waiting_hours": waiting},
    )


def _escalate(
    session: Session, spend: Spend, step: ApprovalStep, at: datetime, *, hours: int
) -> None:
    """The approver's manager (active, not the submitter) may decide the step too; without
    one, the company's admins are asked."""
    approver = users_service.active_user(
        session, company_id=step.company_id, user_id=step.approver_id
    )
    manager = (
        None
        if approver is None
        else users_service.active_user(
            session, company_id=step.company_id, user_id=approver.manager_id
        )
    )
    if manager is not None and manager.id not in (step.submitter_id, step.approver_id):
        step.escalated_to_id = manager.id
    else:
        step.escalated_to_role = "admin"
    step.escalated_at = at
    audit.record_change(
        session,
        step,
        "approval.escalated",
        actor_id=None,
        metadata={
            "spend_id": spend.id,
            "after_hours": hours,
            "from_approver_id": step.approver_id,
            "from_approver_role": step.approver_role,
            "to_user_id": step.escalated_to_id,
            "to_role": step.escalated_to_role,
        },
    )
    targets = (
        [step.escalated_to_id]
        if step.escalated_to_id is not None
        else users_service.active_ids_with_role(
            session, company_id=step.company_id, role="admin", exclude=step.submitter_id
        )
    )
    notifications.notify(
        session,
        company_id=spend.company_id,
        user_ids=targets,
        kind="approval.escalated",
        message=f"Escalated to you after {hours} h without a decision: "
        f"{quantize(spend.amount, spend.currency)} {spend.currency} {spend.description}".strip(),
        entity_type="approval",
        entity_id=step.id,
        context={**flows.spend_context(session, spend), "waiting_hours": hours},
    )


def _reroute_if_stuck(session: Session, spend: Spend, step: ApprovalStep) -> None:
    """A step whose approver can no longer take it (deactivated, no one left in the role) is
    resolved again from the rule that asked for it, in the same order as when it opened."""
    if step.approver_id is not None:
        stuck = (
            users_service.active_user(session, company_id=step.company_id, user_id=step.approver_id)
            is None
        )
    else:
        assert step.approver_role is not None
        stuck = not users_service.active_ids_with_role(
            session, company_id=step.company_id, role=step.approver_role, exclude=step.submitter_id
        )
    if not stuck:
        return
    submitter = session.get(User, step.submitter_id)
    assert submitter is not None
    approver = flows.resolve_approver(session, spend, submitter, step.approver_spec)
    if (approver.user_id, approver.role) == (step.approver_id, step.approver_role):
        if approver == flows.NOBODY and flows.NEEDS_ATTENTION not in spend.system_flags:
            flows.needs_attention(session, spend)
        return
    before = {"approver_id": step.approver_id, "approver_role": step.approver_role}
    step.approver_id, step.approver_role = approver.user_id, approver.role
    audit.record_change(
        session,
        step,
        "approval.rerouted",
        actor_id=None,
        metadata={
            "spend_id": spend.id,
            "from": before,
            "to": {
                "approver_id": step.approver_id,
                "approver_role": step.approver_role,
            },
        },
    )
    if approver == flows.NOBODY:
        flows.needs_attention(session, spend)
    else:
        flows.attended(spend)
        flows.announce_step(session, spend, step)
