"""Who approves a spend, the steps that ask them, and their decisions.

The spend workflow (`spends.flows`) opens the steps its policies ask for; a decision on a step
then moves the spend itself (rejected, the next step opened, or approved and booked).
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.orm import Session

from spendtrackr.apps.approvals import service as approvals_service
from spendtrackr.apps.approvals.models import ApprovalStep, StepStatus
from spendtrackr.apps.approvals.schemas import ApprovalRead
from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.ledger import flows as ledger_flows
from spendtrackr.apps.notifications import service as notifications
from spendtrackr.apps.spends import service as spends_service
from spendtrackr.apps.spends.models import Spend, SpendStatus
from spendtrackr.apps.teams import service as teams_service
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import User
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import utcnow
from spendtrackr.core.errors import Conflict, Forbidden, ValidationFailed
from spendtrackr.core.pagination import Page, PageParams

ADMINS = approvals_service.Approver(spec="admins", role="admin")


def resolve_approver(
    session: Session, spend: Spend, submitter: User, spec: str
) -> approvals_service.Approver:
    """Who decides a step. Nobody approves their own spend. In order: the approver the rule
    names (the submitter's manager, else the manager of the spend's team; a role; a user); when
    that is nobody active, the company's admins, else its finance people; when that is nobody
    either (a sole admin's own spend), `NOBODY`: the step waits for an admin to reassign it and
    the spend is flagged `needs_attention`."""
    company_id = spend.company_id
    if spec in _FALLBACK_SPECS:  # a step that already fell back, resolved again
        return _fallback(session, company_id, submitter.id)
    if spec == "manager":
        manager = users_service.active_user(
            session, company_id=company_id, user_id=submitter.manager_id
        )
        if (
            manager is None or manager.id == submitter.id
        ) and spend.team_id in users_service.team_ids_of(session, submitter):
            team_manager = teams_service.team_manager_id(
                session, company_id=company_id, team_id=spend.team_id
            )
            manager = users_service.active_user(
                session, company_id=company_id, user_id=team_manager
            )
        if manager is None or manager.id == submitter.id:
            return _fallback(session, company_id, submitter.id)
        return approvals_service.Approver(spec=spec, user_id=manager.id)
    kind, _, rest = spec.partition(":")
    if kind == "role":
        others = users_service.active_ids_with_role(
            session, company_id=company_id, role=rest, exclude=submitter.id
        )
        if others:
            return approvals_service.Approver(spec=spec, role=rest)
        return _fallback(session, company_id, submitter.id)
    user = users_service.active_user(session, company_id=company_id, user_id=uuid.UUID(rest))
    if user is None or user.id == submitter.id:
        return _fallback(session, company_id, submitter.id)
    return approvals_service.Approver(spec=spec, user_id=user.id)


FINANCE = approvals_service.Approver(spec="finance", role="finance")
NOBODY = approvals_service.Approver(spec="nobody", role="admin")
_FALLBACK_SPECS = frozenset({"admins", "finance", "nobody"})


def _fallback(
    session: Session, company_id: uuid.UUID, submitter_id: uuid.UUID
) -> approvals_service.Approver:
    for approver in (ADMINS, FINANCE):
        assert approver.role is not None
        if users_service.active_ids_with_role(
            session, company_id=company_id, role=approver.role, exclude=submitter_id
        ):
            return approver
    return NOBODY


def open_steps(
    session: Session,
    spend: Spend,
    submitter: User,
    specs: tuple[str, ...] | list[str],
    *,
    new_spend: bool = False,
) -> list[ApprovalStep]:
    """The steps a decision asks for, in order, each approver once; the first is opened (on the
    submitter's behalf) and its approvers are told. `new_spend`: written by this transaction,
    so it has no steps yet to follow."""
    approvers: list[approvals_service.Approver] = []
    for spec in specs:
        approver = resolve_approver(session, spend, submitter, spec)
        if all((a.user_id, a.role) != (approver.user_id, approver.role) for a in approvers):
            approvers.append(approver)
    steps = approvals_service.create_steps(
        session,
        company_id=spend.company_id,
        spend_id=spend.id,
        submitter_id=submitter.id,
        approvers=approvers,
        new_spend=new_spend,
    )
    if approvers[0] == NOBODY:
        needs_attention(session, spend)
    _step_opened(session, spend, steps[0], actor_id=submitter.id)
    return steps


NEEDS_ATTENTION = "needs_attention"


def needs_attention(session: Session, spend: Spend) -> None:
    """No one but the submitter could decide: the spend waits, flagged, and the admins (the
    submitter among them) are told to add an approver and reassign the step."""
    spends_service.add_system_flag(spend, NEEDS_ATTENTION)
    notifications.notify(
        session,
        company_id=spend.company_id,
        user_ids=users_service.active_ids_with_role(
            session, company_id=spend.company_id, role="admin"
        ),
        kind="approval.needs_attention",
        message=f"No one can approve {spends_service.describe(spend)}: add an approver (an admin "
        "or finance user other than the submitter) and reassign the step",
        entity_type="spend",
        entity_id=spend.id,
    )


def approver_ids(session: Session, step: ApprovalStep) -> list[uuid.UUID]:
    """Who is asked: the approver (or, while they are away, their delegate), or the role."""
    if step.approver_id is not None:
        delegate = approvals_service.delegate_today(
            session, company_id=step.company_id, user_id=step.approver_id, today=today()
        )
        if delegate is not None and delegate != step.submitter_id:
            return [delegate]
        return [step.approver_id]
    assert step.approver_role is not None
    return users_service.active_ids_with_role(
        session, company_id=step.company_id, role=step.approver_role, exclude=step.submitter_id
    )


def _step_opened(
    session: Session, spend: Spend, step: ApprovalStep, *, actor_id: uuid.UUID
) -> None:
    """An open step is written to the audit log and its approvers are told."""
    audit.record_change(
        session,
        step,
        "approval.requested",
        actor_id=actor_id,
        metadata={
            "spend_id": spend.id,
            "step": step.step,
            "approver_id": step.approver_id,
            "approver_role": step.approver_role,
        },
    )
    announce_step(session, spend, step)


def announce_step(session: Session, spend: Spend, step: ApprovalStep) -> None:
    notifications.notify(
        session,
        company_id=spend.company_id,
        user_ids=approver_ids(session, step),
        kind="approval.requested",
        message=f"Approval requested: {quantize(spend.amount, spend.currency)} {spend.currency} "
        f"{spend.description}".strip(),
        entity_type="approval",
        entity_id=step.id,
        context=spend_context(session, spend),
    )


def spend_context(session: Session, spend: Spend) -> dict[str, object]:
    """What an email about a step shows of its spend."""
    return {
        "amount": spend.amount,
        "currency": spend.currency,
        "description": spend.description,
        "spend_date": spend.spend_date,
        "submitter": _name(session, spend.user_id),
        "link": f"/spends/{spend.id}",
        "link_label": "Review the spend",
    }


def _name(session: Session, user_id: uuid.UUID) -> str | None:
    user = session.get(User, user_id)
    return None if user is None else user.full_name


def _move(session: Session, spend: Spend, to: SpendStatus, *, actor_id: uuid.UUID) -> None:
    spends_service.transition(session, spend, to, actor_id=actor_id)
    ledger_flows.post_status(session, spend, to)


def decide(
    session: Session, *, actor: User, approval_id: uuid.UUID, approved: bool, comment: str | None
) -> None:
    """One decision per step, atomically with the spend's status: the spend row is locked first
    (as every change of a spend does), then the step is read again under that lock."""
    step = approvals_service.get_step_or_404(
        session, company_id=actor.company_id, approval_id=approval_id
    )
    spend = spends_service.get_spend_or_404(
        session, company_id=actor.company_id, spend_id=step.spend_id, for_update=True
    )
    step = approvals_service.get_step_or_404(
        session, company_id=actor.company_id, approval_id=approval_id, for_update=True
    )
    for_whom = approvals_service.standing_in_for(
        session, company_id=actor.company_id, delegate_id=actor.id, today=today()
    )
    if not approvals_service.may_decide(step, user_id=actor.id, role=actor.role, for_whom=for_whom):
        raise Forbidden("Not allowed", code="not_approver")
    on_behalf_of = (
        step.approver_id if step.approver_id != actor.id and step.approver_id in for_whom else None
    )
    approvals_service.decide(step, user_id=actor.id, approved=approved, comment=comment)
    audit.record_change(
        session,
        step,
        "approval.approved" if approved else "approval.rejected",
        actor_id=actor.id,
        metadata={
            "spend_id": spend.id,
            "step": step.step,
            "comment": comment,
            **({"on_behalf_of": on_behalf_of} if on_behalf_of else {}),
        },
    )
    described = spends_service.describe(spend)
    if not approved:
        approvals_service.close_open_steps(session, company_id=spend.company_id, spend_id=spend.id)
        _move(session, spend, SpendStatus.rejected, actor_id=actor.id)
        notifications.notify_owner(
            session,
            spend,
            kind="spend.rejected",
            message=f"Your spend {described} was rejected" + (f": {comment}" if comment else ""),
        )
        return
    next_step = approvals_service.open_next(session, company_id=spend.company_id, spend_id=spend.id)
    if next_step is not None:
        _step_opened(session, spend, next_step, actor_id=actor.id)
        return
    _move(session, spend, SpendStatus.approved, actor_id=actor.id)
    notifications.notify_owner(
        session, spend, kind="spend.approved", message=f"Your spend {described} was approved"
    )


# --- delegation and reassignment ------------------------------------------------------------------


def today() -> date:
    return utcnow().date()


def list_actionable(
    session: Session, *, actor: User, status: StepStatus, page: PageParams
) -> Page[ApprovalRead]:
    """The steps the caller can act on, with those of the people they stand in for."""
    total, steps = approvals_service.list_actionable(
        session,
        company_id=actor.company_id,
        user_id=actor.id,
        role=actor.role,
        status=status,
        page=page,
        for_whom=approvals_service.standing_in_for(
            session, company_id=actor.company_id, delegate_id=actor.id, today=today()
        ),
    )
    return Page(total=total, items=[ApprovalRead.model_validate(s) for s in steps])


def reassign(
    session: Session, *, actor: User, approval_id: uuid.UUID, approver_id: uuid.UUID
) -> ApprovalRead:
    """An admin hands an open step to someone else (active, never the submitter)."""
    spend_step = approvals_service.get_step_or_404(
        session, company_id=actor.company_id, approval_id=approval_id
    )
    spend = spends_service.get_spend_or_404(
        session, company_id=actor.company_id, spend_id=spend_step.spend_id, for_update=True
    )
    step = approvals_service.get_step_or_404(
        session, company_id=actor.company_id, approval_id=approval_id, for_update=True
    )
    if step.status is not StepStatus.pending:
        raise Conflict(
            f"The step is {step.status}: only an open step is reassigned", code="approval_not_open"
        )
    approver = users_service.active_user(session, company_id=actor.company_id, user_id=approver_id)
    if approver is None or approver.id == step.submitter_id:
        raise ValidationFailed(
            "approver_id: an active user of the company other than the submitter",
            code="invalid_approver",
        )
    before = {"approver_id": step.approver_id, "approver_role": step.approver_role}
    approvals_service.reassign(step, approver_id=approver.id)
    attended(spend)
    audit.record_change(
        session,
        step,
        "approval.reassigned",
        actor_id=actor.id,
        metadata={"spend_id": spend.id, "from": before, "to_approver_id": approver.id},
    )
    announce_step(session, spend, step)
    return ApprovalRead.model_validate(step)


def attended(spend: Spend) -> None:
    if NEEDS_ATTENTION in spend.system_flags:
        spend.system_flags = [f for f in spend.system_flags if f != NEEDS_ATTENTION]
