from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field, StrictBool

from spendtrackr.apps.policies.rules import Amount, Rules, Source
from spendtrackr.core.currency import CurrencyCode
from spendtrackr.core.schemas import Name, Schema, UpdateSchema, WriteSchema


class PolicyRead(Schema):
    id: uuid.UUID
    name: str
    is_active: bool
    rules: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class PolicyCreate(WriteSchema):
    name: Name
    is_active: StrictBool = True
    rules: Rules = Field(
        examples=[
            [
                {
                    "condition": {"amount_gt": 500},
                    "action": {"type": "require_approval", "approver": "manager"},
                    "priority": 10,
                }
            ]
        ]
    )


class PolicyUpdate(UpdateSchema):
    name: Name | None = None
    is_active: StrictBool | None = None
    rules: Rules | None = None


class EvaluateRequest(WriteSchema):
    amount: Amount
    currency: CurrencyCode
    spend_date: date | None = Field(
        default=None,
        description="The day whose rate prices the amount in the base currency (default: today)",
    )
    category_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = Field(
        default=None, description="Evaluate as this user (default: you)"
    )
    team_id: uuid.UUID | None = None
    source: Source = "manual"
    has_receipt: StrictBool = False


class MatchedRuleRead(Schema):
    policy_id: uuid.UUID
    policy_name: str
    rule_index: int
    priority: int
    action: str


class DecisionRead(Schema):
    outcome: Literal["approved", "pending", "blocked"]
    approvers: list[str]
    flags: list[str]
    matched_rules: list[MatchedRuleRead]
    block_reason: str | None


class PolicyDryRun(WriteSchema):
    rules: Rules
    policy_id: uuid.UUID | None = Field(
        default=None,
        description="The policy these rules would replace (default: a new policy beside the "
        "active ones)",
    )
    name: Name = "Draft"
    limit: int = Field(default=50, ge=1, le=200, description="How many of the latest spends")


class DryRunItem(Schema):
    spend_id: uuid.UUID
    spend_date: date
    description: str
    amount: str
    currency: str
    base_amount: str
    status: str = Field(description="The spend's status now")
    outcome_then: str | None = Field(description="What the policies decided at its submission")
    outcome: str = Field(description="What they would decide with the draft")
    flags: list[str]
    approvers: list[str]
    block_reason: str | None
    matched_rules: list[MatchedRuleRead]


class DryRunRead(Schema):
    evaluated: int
    changed: int = Field(description="Spends whose outcome would differ from the one they got")
    outcomes: dict[str, int] = Field(description="How many would be approved, pending, blocked")
    items: list[DryRunItem]
