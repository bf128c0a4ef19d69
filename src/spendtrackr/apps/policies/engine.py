"""The policy engine: a pure function of (spend facts, rules) -> decision. No database, no I/O.

Every active rule is checked. A matching `block` blocks (block beats everything). Otherwise the
matching `require_approval` rules become approval steps in priority order (lower first), duplicate
approvers removed, up to the first matching `auto_approve`, which waives the approvals of the rules
after it (so "under 25: auto approve" at priority 0 beats "everything: manager" at 100). No step:
approved. Matching `flag` rules add their flag whatever the outcome.

Budgets come in as facts: a spend that takes a budget past its amount is flagged `over_budget`,
and one that takes a `hard` budget past it is blocked (after any rule's block), whatever the rules
say; rules may ask about budgets too (`budget_exceeded`, `budget_remaining_lt`).

Rules are compiled once into closures (`compile_rules`), so an evaluation is a few attribute reads
and comparisons per rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from spendtrackr.apps.policies.rules import (
    AutoApproveAction,
    BlockAction,
    Condition,
    FlagAction,
    RequireApprovalAction,
    Rule,
)

Outcome = Literal["approved", "pending", "blocked"]


@dataclass(frozen=True, slots=True)
class Facts:
    amount: Decimal
    currency: str
    source: str = "manual"
    category_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    user_role: str = "employee"
    team_ids: frozenset[uuid.UUID] = frozenset()
    has_receipt: bool = False
    mcc: str | None = None  # a card purchase's merchant category code
    # The budgets the spend counts in: the least any would have left after it (None: none
    # covers it), whether it takes one past its amount, and the name of a hard one it does.
    budget_remaining: Decimal | None = None
    budget_exceeded: bool = False
    hard_budget_exceeded: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """A rule with where it came from, for `matched_rules`."""

    policy_id: uuid.UUID
    policy_name: str
    index: int
    rule: Rule


@dataclass(frozen=True, slots=True)
class MatchedRule:
    policy_id: uuid.UUID
    policy_name: str
    rule_index: int
    priority: int
    action: str


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    approvers: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    matched_rules: tuple[MatchedRule, ...] = ()
    block_reason: str | None = None
    blocked_by_budget: bool = False  # blocked by a hard budget, not by a rule


Predicate = Callable[[Facts], bool]

OVER_BUDGET = "over_budget"  # the flag of a spend that takes a budget past its amount


def compile_condition(cond: Condition) -> Predicate:
    checks: list[Predicate] = []
    if cond.amount_gt is not None:
        gt = cond.amount_gt
        checks.append(lambda f: f.amount > gt)
    if cond.amount_gte is not None:
        gte = cond.amount_gte
        checks.append(lambda f: f.amount >= gte)
    if cond.amount_lt is not None:
        lt = cond.amount_lt
        checks.append(lambda f: f.amount < lt)
    if cond.amount_lte is not None:
        lte = cond.amount_lte
        checks.append(lambda f: f.amount <= lte)
    if cond.currency_in is not None:
        currencies = frozenset(cond.currency_in)
        checks.append(lambda f: f.currency in currencies)
    if cond.category_in is not None:
        categories = frozenset(cond.category_in)
        checks.append(lambda f: f.category_id in categories)
    if cond.vendor_in is not None:
        vendors = frozenset(cond.vendor_in)
        checks.append(lambda f: f.vendor_id in vendors)
    if cond.user_role_in is not None:
        roles = frozenset(r.value for r in cond.user_role_in)
        checks.append(lambda f: f.user_role in roles)
    if cond.team_in is not None:
        teams = frozenset(cond.team_in)
        checks.append(lambda f: not teams.isdisjoint(f.team_ids))
    if cond.source_in is not None:
        sources = frozenset(cond.source_in)
        checks.append(lambda f: f.source in sources)
    if cond.mcc_in is not None:
        codes = frozenset(cond.mcc_in)
        checks.append(lambda f: f.mcc in codes)
    if cond.receipt_missing is not None:
        missing = cond.receipt_missing
        checks.append(lambda f: (not f.has_receipt) == missing)
    if cond.budget_exceeded is not None:
        over = cond.budget_exceeded
        checks.append(lambda f: f.budget_exceeded == over)
    if cond.budget_remaining_lt is not None:
        below = cond.budget_remaining_lt
        checks.append(lambda f: f.budget_remaining is not None and f.budget_remaining < below)
    if cond.any is not None:
        checks.append(_any_of(tuple(compile_condition(c) for c in cond.any)))
    if cond.not_ is not None:
        negated = compile_condition(cond.not_)
        checks.append(lambda f: not negated(f))
    if not checks:
        return lambda f: True
    if len(checks) == 1:
        return checks[0]
    return _all_of(tuple(checks))


# Combinators without generator expressions: `all(c(f) for c in checks)` builds a generator on
# every call, which costs more than the comparisons it runs.
def _all_of(checks: tuple[Predicate, ...]) -> Predicate:
    if len(checks) == 2:
        first, second = checks
        return lambda f: first(f) and second(f)

    def all_match(f: Facts) -> bool:
        for check in checks:  # noqa: SIM110 - see above
            if not check(f):
                return False
        return True

    return all_match


def _any_of(checks: tuple[Predicate, ...]) -> Predicate:
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda f: first(f) or second(f)

    def any_match(f: Facts) -> bool:
        for check in checks:  # noqa: SIM110 - see above
            if check(f):
                return True
        return False

    return any_match


@dataclass(frozen=True, slots=True)
class CompiledRule:
    source: PolicyRule
    matches: Predicate
    matched: MatchedRule = field(compare=False)


def _mentions(cond: Condition, key: str) -> bool:
    if getattr(cond, key) is not None:
        return True
    children = [*(cond.any or []), *([cond.not_] if cond.not_ else [])]
    return any(_mentions(c, key) for c in children)


def uses_teams(rules: Sequence[CompiledRule]) -> bool:
    """Whether any rule asks about teams (the caller may then skip looking them up)."""
    return any(_mentions(r.source.rule.condition, "team_in") for r in rules)


def compile_rules(rules: Sequence[PolicyRule]) -> tuple[CompiledRule, ...]:
    """Compile and sort by priority (stable: policy order, then rule order, breaks ties)."""
    ordered = sorted(rules, key=lambda r: r.rule.priority)
    return tuple(
        CompiledRule(
            source=r,
            matches=compile_condition(r.rule.condition),
            matched=MatchedRule(
                policy_id=r.policy_id,
                policy_name=r.policy_name,
                rule_index=r.index,
                priority=r.rule.priority,
                action=r.rule.action.type,
            ),
        )
        for r in ordered
    )


def evaluate(facts: Facts, rules: Sequence[CompiledRule]) -> Decision:
    matched: list[MatchedRule] = []
    approvers: list[str] = []
    flags: list[str] = []
    block_reason: str | None = None
    waived = False
    for compiled in rules:
        if not compiled.matches(facts):
            continue
        matched.append(compiled.matched)
        action = compiled.source.rule.action
        if isinstance(action, BlockAction):
            if block_reason is None:
                block_reason = action.reason
        elif isinstance(action, RequireApprovalAction):
            if not waived and action.approver not in approvers:
                approvers.append(action.approver)
        elif isinstance(action, AutoApproveAction):
            waived = True
        elif isinstance(action, FlagAction) and action.flag not in flags:
            flags.append(action.flag)
    if facts.budget_exceeded and OVER_BUDGET not in flags:
        flags.append(OVER_BUDGET)
    if block_reason is not None:
        return Decision("blocked", (), tuple(flags), tuple(matched), block_reason)
    if facts.hard_budget_exceeded is not None:
        reason = f"Over the hard budget {facts.hard_budget_exceeded!r}"
        return Decision("blocked", (), tuple(flags), tuple(matched), reason, blocked_by_budget=True)
    outcome: Outcome = "pending" if approvers else "approved"
    return Decision(outcome, tuple(approvers), tuple(flags), tuple(matched))
