from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from spendtrackr.core.db import Base, Entity, StrEnumType, utcnow


class StepStatus(StrEnum):
    waiting = "waiting"  # a later step; opens when the one before it is approved
    pending = "pending"  # the open step: its approver can decide now
    approved = "approved"
    rejected = "rejected"
    skipped = "skipped"  # closed without a decision (spend cancelled, rejected or edited)


class ApprovalStep(Entity):
    __tablename__ = "approval_step"
    # A decided step's audit entry fingerprints these (see Spend).
    __audit_entity__ = "approval"
    __audit_digest__ = ("spend_id", "step", "status", "approver_id", "approver_role", "decided_by")
    # The inbox (`service.list_actionable`) reads one of these per way a step can be someone's,
    # each in the inbox's order: every branch stops at its page instead of scanning and sorting
    # all the company's open steps.
    __table_args__ = (
        Index("ix_approval_step_company_status_created", "company_id", "status", "created_at"),
        Index(
            "ix_approval_step_company_status_approver",
            "company_id",
            "status",
            "approver_id",
            "created_at",
        ),
        Index(
            "ix_approval_step_company_status_role",
            "company_id",
            "status",
            "approver_role",
            "created_at",
        ),
        Index(
            "ix_approval_step_company_status_escalated_to",
            "company_id",
            "status",
            "escalated_to_id",
            "created_at",
        ),
        Index(
            "ix_approval_step_company_status_escalated_role",
            "company_id",
            "status",
            "escalated_to_role",
            "created_at",
        ),
        Index("ix_approval_step_company_spend", "company_id", "spend_id", "step"),
        Index("ix_approval_step_nudge", "status", "next_nudge_at"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    spend_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spend.id"))
    # The spend's submitter, kept here so "what can I act on" needs no join, and so nobody is
    # ever offered their own spend.
    submitter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    step: Mapped[int]
    approver_spec: Mapped[str] = mapped_column(String(64))
    # Exactly one of these: a named approver, or any active user of a role.
    approver_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    approver_role: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[StepStatus] = mapped_column(StrEnumType(StepStatus, 10))
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    comment: Mapped[str | None] = mapped_column(String(1000))
    decided_at: Mapped[datetime | None]
    # Reminders and escalation (`approvals.nudges`): when the step opened, when the
    # worker looks at it next, and what it did.
    opened_at: Mapped[datetime | None]
    next_nudge_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    # Who may also decide once escalated: the approver's manager, or the admins.
    escalated_to_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    escalated_to_role: Mapped[str | None] = mapped_column(String(16))


class Delegation(Base):
    """While a person is away (`starts_on`..`ends_on`, UTC dates, both included), their delegate
    receives and may decide the steps that are theirs. One hop: a delegate's own delegation does
    not pass these steps on."""

    __audit_entity__ = "delegation"
    __tablename__ = "delegation"
    __table_args__ = (Index("ix_delegation_company_delegate", "company_id", "delegate_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id"))
    delegate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def id(self) -> uuid.UUID:  # what the audit log names it by
        return self.user_id
