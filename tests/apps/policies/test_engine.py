"""The policy engine: every operator, combinators, priorities, and properties over random rules."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from spendtrackr.apps.policies.engine import (
    Facts,
    PolicyRule,
    compile_condition,
    compile_rules,
    evaluate,
)
from spendtrackr.apps.policies.rules import Condition, Rule

CAT_A, CAT_B = uuid.uuid4(), uuid.uuid4()
VENDOR = uuid.uuid4()
TEAM = uuid.uuid4()
POLICY = uuid.uuid4()


def facts(**overrides: Any) -> Facts:
    values: dict[str, Any] = {"amount": Decimal("100.00"), "currency": "USD"}
    values.update(overrides)
    return Facts(**values)


def matches(condition: dict[str, Any], f: Facts) -> bool:
    return compile_condition(Condition.model_validate(condition))(f)


def rules(*specs: dict[str, Any]) -> Any:
    return compile_rules(
        [
            PolicyRule(policy_id=POLICY, policy_name="p", index=i, rule=Rule.model_validate(s))
            for i, s in enumerate(specs)
        ]
    )


@pytest.mark.parametrize(
    ("condition", "amount", "expected"),
    [
        ({"amount_gt": 100}, "100.00", False),
        ({"amount_gt": 100}, "100.01", True),
        ({"amount_gte": 100}, "100.00", True),
        ({"amount_gte": 100}, "99.99", False),
        ({"amount_lt": 100}, "99.99", True),
        ({"amount_lt": 100}, "100.00", False),
        ({"amount_lte": 100}, "100.00", True),
        ({"amount_lte": 100}, "100.01", False),
        ({"amount_gt": "0.1"}, "0.10", False),
        ({"amount_gt": 0.1}, "0.11", True),
    ],
)
def test_amount_operators_at_their_boundaries(
    condition: dict[str, Any], amount: str, expected: bool
) -> None:
    assert matches(condition, facts(amount=Decimal(amount))) is expected


@pytest.mark.parametrize(
    ("condition", "f", "expected"),
    [
        ({"currency_in": ["usd", "EUR"]}, facts(currency="EUR"), True),
        ({"currency_in": ["USD"]}, facts(currency="EUR"), False),
        ({"category_in": [str(CAT_A)]}, facts(category_id=CAT_A), True),
        ({"category_in": [str(CAT_A)]}, facts(category_id=CAT_B), False),
        ({"category_in": [str(CAT_A)]}, facts(category_id=None), False),
        ({"vendor_in": [str(VENDOR)]}, facts(vendor_id=VENDOR), True),
        ({"vendor_in": [str(VENDOR)]}, facts(), False),
        ({"user_role_in": ["manager", "finance"]}, facts(user_role="finance"), True),
        ({"user_role_in": ["manager"]}, facts(user_role="employee"), False),
        ({"team_in": [str(TEAM)]}, facts(team_ids=frozenset({TEAM, uuid.uuid4()})), True),
        ({"team_in": [str(TEAM)]}, facts(team_ids=frozenset()), False),
        ({"source_in": ["card"]}, facts(source="card"), True),
        ({"source_in": ["card"]}, facts(source="manual"), False),
        ({"receipt_missing": True}, facts(has_receipt=False), True),
        ({"receipt_missing": True}, facts(has_receipt=True), False),
        ({"receipt_missing": False}, facts(has_receipt=True), True),
        ({}, facts(), True),
        ({"amount_gt": 50, "currency_in": ["USD"]}, facts(), True),
        ({"amount_gt": 50, "currency_in": ["EUR"]}, facts(), False),
        ({"any": [{"amount_gt": 500}, {"currency_in": ["USD"]}]}, facts(), True),
        ({"any": [{"amount_gt": 500}, {"currency_in": ["EUR"]}]}, facts(), False),
        ({"not": {"currency_in": ["USD"]}}, facts(), False),
        ({"not": {"currency_in": ["EUR"]}}, facts(), True),
        ({"not": {"any": [{"amount_lt": 10}, {"source_in": ["card"]}]}}, facts(), True),
    ],
)
def test_conditions(condition: dict[str, Any], f: Facts, expected: bool) -> None:
    assert matches(condition, f) is expected


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"amount_bigger": 5}, "amount_bigger"),
        ({"amount_gt": "lots"}, "amount_gt"),
        ({"currency_in": "USD"}, "currency_in"),
        ({"currency_in": ["XXQ"]}, "currency_in"),
        ({"category_in": ["not-a-uuid"]}, "category_in"),
        ({"user_role_in": ["king"]}, "user_role_in"),
        ({"receipt_missing": "sometimes"}, "receipt_missing"),
        ({"receipt_missing": "yes"}, "receipt_missing"),
        ({"receipt_missing": 1}, "receipt_missing"),
        ({"any": {"amount_gt": 1}}, "any"),
        ({"not": {"nope": 1}}, "nope"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_field(condition: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Condition.model_validate(condition)
    assert any(field in [str(p) for p in err["loc"]] for err in info.value.errors())


def test_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {"amount_gt": 1}
    for _ in range(10):
        deep = {"not": deep}
    with pytest.raises(ValidationError, match="nest at most"):
        Condition.model_validate(deep)


@pytest.mark.parametrize(
    "action",
    [
        {"type": "explode"},
        {"type": "require_approval", "approver": "role:king"},
        {"type": "require_approval", "approver": "user:nope"},
        {"type": "flag", "flag": "Not A Flag"},
        {"type": "block", "reason": ""},
    ],
)
def test_bad_actions_are_rejected(action: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Rule.model_validate({"condition": {}, "action": action})


def test_no_rules_approves() -> None:
    decision = evaluate(facts(), ())
    assert decision.outcome == "approved"
    assert decision.matched_rules == ()


def test_require_approval_steps_follow_priority_and_drop_duplicates() -> None:
    decision = evaluate(
        facts(amount=Decimal("900")),
        rules(
            {
                "condition": {"amount_gt": 100},
                "action": {"type": "require_approval", "approver": "role:finance"},
                "priority": 20,
            },
            {
                "condition": {"amount_gt": 500},
                "action": {"type": "require_approval", "approver": "manager"},
                "priority": 10,
            },
            {
                "condition": {},
                "action": {"type": "require_approval", "approver": "manager"},
                "priority": 30,
            },
            {
                "condition": {"amount_gt": 5000},
                "action": {"type": "require_approval", "approver": "role:admin"},
                "priority": 1,
            },
        ),
    )
    assert decision.outcome == "pending"
    assert decision.approvers == ("manager", "role:finance")
    assert [m.rule_index for m in decision.matched_rules] == [1, 0, 2]


def test_block_beats_approval_and_flags_apply_in_every_outcome() -> None:
    rule_set = rules(
        {"condition": {}, "action": {"type": "flag", "flag": "needs_review"}, "priority": 50},
        {
            "condition": {"amount_gt": 100},
            "action": {"type": "require_approval", "approver": "manager"},
            "priority": 1,
        },
        {
            "condition": {"vendor_in": [str(VENDOR)]},
            "action": {"type": "block", "reason": "Banned vendor"},
            "priority": 99,
        },
        {
            "condition": {"amount_gt": 1},
            "action": {"type": "flag", "flag": "needs_review"},
            "priority": 60,
        },
    )
    blocked = evaluate(facts(amount=Decimal("500"), vendor_id=VENDOR), rule_set)
    assert blocked.outcome == "blocked"
    assert blocked.block_reason == "Banned vendor"
    assert blocked.approvers == ()
    assert blocked.flags == ("needs_review",)
    pending = evaluate(facts(amount=Decimal("500")), rule_set)
    assert (pending.outcome, pending.flags) == ("pending", ("needs_review",))
    approved = evaluate(facts(amount=Decimal("50")), rule_set)
    assert (approved.outcome, approved.flags) == ("approved", ("needs_review",))


def test_auto_approve_waives_the_approvals_after_it() -> None:
    rule_set = rules(
        {"condition": {"amount_lt": 25}, "action": {"type": "auto_approve"}, "priority": 0},
        {
            "condition": {},
            "action": {"type": "require_approval", "approver": "manager"},
            "priority": 100,
        },
        {
            "condition": {"category_in": [str(CAT_A)]},
            "action": {"type": "require_approval", "approver": "role:finance"},
            "priority": -5,
        },
    )
    assert evaluate(facts(amount=Decimal("10")), rule_set).outcome == "approved"
    assert evaluate(facts(amount=Decimal("30")), rule_set).approvers == ("manager",)
    # a rule placed before the auto-approval still applies
    assert evaluate(facts(amount=Decimal("10"), category_id=CAT_A), rule_set).approvers == (
        "role:finance",
    )


# --- properties -------------------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
conditions = st.recursive(
    st.one_of(
        st.builds(lambda a: {"amount_gt": str(a)}, amounts),
        st.builds(lambda a: {"amount_lte": str(a)}, amounts),
        st.builds(
            lambda c: {"currency_in": c},
            st.lists(st.sampled_from(["USD", "EUR", "JPY"]), min_size=1, max_size=3),
        ),
        st.builds(
            lambda r: {"user_role_in": r},
            st.lists(st.sampled_from(["employee", "manager", "finance", "admin"]), min_size=1),
        ),
        st.builds(lambda b: {"receipt_missing": b}, st.booleans()),
        st.just({}),
    ),
    lambda children: st.one_of(
        st.builds(lambda cs: {"any": cs}, st.lists(children, min_size=1, max_size=4)),
        st.builds(lambda c: {"not": c}, children),
        # Several checks in one condition (all must hold).
        st.builds(
            lambda cs: {k: v for c in cs for k, v in c.items()},
            st.lists(children, min_size=2, max_size=4),
        ),
    ),
    max_leaves=8,
)
actions = st.one_of(
    st.builds(lambda r: {"type": "block", "reason": r}, st.sampled_from(["no", "never"])),
    st.builds(
        lambda a: {"type": "require_approval", "approver": a},
        st.sampled_from(["manager", "role:finance", "role:admin"]),
    ),
    st.just({"type": "auto_approve"}),
    st.builds(lambda f: {"type": "flag", "flag": f}, st.sampled_from(["big", "odd"])),
)
rule_specs = st.lists(
    st.fixed_dictionaries(
        {"condition": conditions, "action": actions, "priority": st.integers(-10, 10)}
    ),
    max_size=12,
)
fact_values = st.builds(
    lambda amount, currency, role, has_receipt: facts(
        amount=amount, currency=currency, user_role=role, has_receipt=has_receipt
    ),
    amounts,
    st.sampled_from(["USD", "EUR", "JPY"]),
    st.sampled_from(["employee", "manager", "finance", "admin"]),
    st.booleans(),
)


def _holds(condition: dict[str, Any], f: Facts) -> bool:
    """An independent reading of one condition: every key must hold."""
    checks = {
        "amount_gt": lambda v: f.amount > Decimal(v),
        "amount_lte": lambda v: f.amount <= Decimal(v),
        "currency_in": lambda v: f.currency in v,
        "user_role_in": lambda v: f.user_role in v,
        "receipt_missing": lambda v: (not f.has_receipt) == v,
        "any": lambda v: any(_holds(c, f) for c in v),
        "not": lambda v: not _holds(v, f),
    }
    return all(checks[key](value) for key, value in condition.items())


@settings(max_examples=400, deadline=None)
@given(conditions, fact_values)
def test_compiled_conditions_agree_with_a_naive_reading(
    condition: dict[str, Any], f: Facts
) -> None:
    assert matches(condition, f) == _holds(condition, f)


def _naive(f: Facts, specs: list[dict[str, Any]]) -> tuple[str, list[str], list[str]]:
    """An independent, slow reading of the rules in API.md, to compare the engine against."""
    ordered = sorted(enumerate(specs), key=lambda p: p[1]["priority"])
    matching = [s for _, s in ordered if matches(s["condition"], f)]
    flags = list(
        dict.fromkeys(s["action"]["flag"] for s in matching if s["action"]["type"] == "flag")
    )
    if any(s["action"]["type"] == "block" for s in matching):
        return "blocked", [], flags
    approvers: list[str] = []
    for s in matching:
        if s["action"]["type"] == "auto_approve":
            break
        if s["action"]["type"] == "require_approval" and s["action"]["approver"] not in approvers:
            approvers.append(s["action"]["approver"])
    return ("pending" if approvers else "approved"), approvers, flags


@settings(max_examples=300, deadline=None)
@given(rule_specs, fact_values)
def test_engine_agrees_with_a_naive_reading(specs: list[dict[str, Any]], f: Facts) -> None:
    decision = evaluate(f, rules(*specs))
    assert (decision.outcome, list(decision.approvers), list(decision.flags)) == _naive(f, specs)


@settings(max_examples=200, deadline=None)
@given(rule_specs, fact_values)
def test_decision_invariants(specs: list[dict[str, Any]], f: Facts) -> None:
    decision = evaluate(f, rules(*specs))
    assert len(set(decision.approvers)) == len(decision.approvers)
    assert (decision.outcome == "pending") == bool(decision.approvers)
    assert (decision.outcome == "blocked") == (decision.block_reason is not None)
    priorities = [m.priority for m in decision.matched_rules]
    assert priorities == sorted(priorities)
    # adding a matching block rule always blocks
    blocked = evaluate(
        f, rules(*specs, {"condition": {}, "action": {"type": "block", "reason": "x"}})
    )
    assert blocked.outcome == "blocked"
    # conditions round-trip through storage unchanged
    for spec in specs:
        stored = Rule.model_validate(spec).model_dump(mode="json", by_alias=True, exclude_none=True)
        assert Rule.model_validate(stored) == Rule.model_validate(spec)
