"""The policy rule language, validated by Pydantic.

A rule is `{condition, action, priority}`. A condition is an object whose keys are AND-ed; `any`
(OR of conditions) and `not` nest. Unknown keys and wrong types are refused with a 422 that names
them. Nesting depth and list sizes are bounded so that a hostile policy costs little to check.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from spendtrackr.apps.users.models import Role
from spendtrackr.core.currency import CurrencyCode, JsonDecimal, PlainText

MAX_DEPTH = 6
MAX_LIST = 500
MAX_RULES = 100

Amount = Annotated[JsonDecimal, Field(ge=0, le=Decimal("1e14"), decimal_places=4), PlainText]
Source = Literal["manual", "card"]


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    amount_gt: Amount | None = None
    amount_gte: Amount | None = None
    amount_lt: Amount | None = None
    amount_lte: Amount | None = None
    currency_in: Annotated[list[CurrencyCode], Field(min_length=1, max_length=MAX_LIST)] | None = (
        None
    )
    category_in: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_LIST)] | None = None
    vendor_in: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_LIST)] | None = None
    user_role_in: Annotated[list[Role], Field(min_length=1, max_length=MAX_LIST)] | None = None
    team_in: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_LIST)] | None = None
    source_in: Annotated[list[Source], Field(min_length=1, max_length=MAX_LIST)] | None = None
    mcc_in: (
        Annotated[
            list[Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]],
            Field(min_length=1, max_length=MAX_LIST),
        ]
        | None
    ) = None
    receipt_missing: StrictBool | None = None
    budget_exceeded: StrictBool | None = None
    budget_remaining_lt: Amount | None = None
    any: Annotated[list[Condition], Field(min_length=1, max_length=50)] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _bounded_depth(self) -> Condition:
        if self.depth() > MAX_DEPTH:
            raise ValueError(f"conditions may nest at most {MAX_DEPTH} levels deep")
        return self

    def children(self) -> list[Condition]:
        return [*(self.any or []), *([self.not_] if self.not_ else [])]

    def depth(self) -> int:
        return 1 + max((c.depth() for c in self.children()), default=0)

    def walk(self) -> Iterator[Condition]:
        """This condition and every one nested in it."""
        yield self
        for child in self.children():
            yield from child.walk()


class BlockAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["block"]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] = "Blocked by policy"


class RequireApprovalAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["require_approval"]
    approver: str = Field(
        default="manager",
        description='"manager" (the default: the submitter\'s manager, as approver resolution '
        'finds one), "role:<employee|manager|finance|admin>" or "user:<uuid>"',
        examples=["manager", "role:finance"],
    )

    @field_validator("approver")
    @classmethod
    def _check_approver(cls, value: str) -> str:
        if value == "manager":
            return value
        kind, _, rest = value.partition(":")
        if kind == "role" and rest in Role.__members__:
            return value
        if kind == "user":
            try:
                return f"user:{uuid.UUID(rest)}"
            except ValueError:
                pass
        raise ValueError('approver must be "manager", "role:<role>" or "user:<uuid>"')


class AutoApproveAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["auto_approve"]


class FlagAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["flag"]
    flag: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


Action = Annotated[
    BlockAction | RequireApprovalAction | AutoApproveAction | FlagAction,
    Field(discriminator="type"),
]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    condition: Condition = Field(default_factory=Condition)
    action: Action
    priority: StrictInt = Field(default=100, ge=-1_000_000, le=1_000_000)


Rules = Annotated[list[Rule], Field(max_length=MAX_RULES)]
