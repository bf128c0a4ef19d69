from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field, StrictBool

from spendtrackr.apps.approvals.models import StepStatus
from spendtrackr.core.schemas import JsonDate, Schema, WriteSchema


class ApprovalRead(Schema):
    id: uuid.UUID
    spend_id: uuid.UUID
    step: int
    approver_id: uuid.UUID | None
    approver_role: str | None
    status: StepStatus
    decided_by: uuid.UUID | None
    comment: str | None
    decided_at: datetime | None
    escalated_at: datetime | None = Field(
        default=None, description="When the step was escalated for want of a decision"
    )
    escalated_to_id: uuid.UUID | None = Field(
        default=None, description="Who may decide it too since: the approver's manager"
    )
    escalated_to_role: str | None = Field(
        default=None, description='Or the role that may ("admin": no manager to turn to)'
    )
    created_at: datetime


class DecisionRequest(WriteSchema):
    approved: StrictBool
    comment: str | None = Field(default=None, max_length=1000)


class DelegationSet(WriteSchema):
    delegate_id: uuid.UUID
    starts_on: JsonDate
    ends_on: JsonDate


class DelegationRead(Schema):
    user_id: uuid.UUID
    delegate_id: uuid.UUID
    starts_on: date
    ends_on: date
    active: bool = Field(description="Whether the delegate stands in today (UTC)")


class ReassignRequest(WriteSchema):
    approver_id: uuid.UUID
