"""Policies written by an admin (their rules may only name the company's own categories,
vendors, teams and users), and the dry run, for someone of the company."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from spendtrackr.apps.budgets import service as budgets_service
from spendtrackr.apps.catalog import service as catalog_service
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.policies import engine, service
from spendtrackr.apps.policies.models import Policy
from spendtrackr.apps.policies.rules import RequireApprovalAction, Rule
from spendtrackr.apps.policies.schemas import (
    DryRunItem,
    DryRunRead,
    EvaluateRequest,
    MatchedRuleRead,
    PolicyDryRun,
    PolicyUpdate,
)
from spendtrackr.apps.rates import service as rates_service
from spendtrackr.apps.receipts import service as receipts_service
from spendtrackr.apps.spends import flows as spends_flows
from spendtrackr.apps.spends import service as spends_service
from spendtrackr.apps.spends.models import Spend
from spendtrackr.apps.teams import service as teams_service
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import User
from spendtrackr.core.config import get_settings
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import utcnow
from spendtrackr.core.errors import ValidationFailed


def create_policy(
    session: Session, *, actor: User, name: str, is_active: bool, rules: list[Rule]
) -> Policy:
    check_references(session, actor.company_id, rules)
    return service.create_policy(
        session,
        company_id=actor.company_id,
        actor_id=actor.id,
        name=name,
        is_active=is_active,
        rules=rules,
    )


def update_policy(
    session: Session, *, actor: User, policy_id: uuid.UUID, body: PolicyUpdate
) -> Policy:
    changes = body.changes()
    if body.rules:
        check_references(session, actor.company_id, body.rules)
    return service.update_policy(
        session,
        company_id=actor.company_id,
        actor_id=actor.id,
        policy_id=policy_id,
        changes=changes,
    )


def check_references(session: Session, company_id: uuid.UUID, rules: list[Rule]) -> None:
    """Every category, vendor and team a rule's condition names, and the user an approval step
    names, must be the company's own (the user active), else 422 naming the first rule that
    does not. A rule naming another company's category never matched, and its approval went to
    the admins instead: a typo or a pasted id found out only by the spends it let through."""
    named: dict[str, dict[uuid.UUID, int]] = {"category": {}, "vendor": {}, "team": {}}
    approvers: dict[uuid.UUID, int] = {}
    for index, rule in enumerate(rules):
        for condition in rule.condition.walk():
            for kind, ids in (
                ("category", condition.category_in),
                ("vendor", condition.vendor_in),
                ("team", condition.team_in),
            ):
                for item_id in ids or ():
                    named[kind].setdefault(item_id, index)
        action = rule.action
        if isinstance(action, RequireApprovalAction) and action.approver.startswith("user:"):
            approvers.setdefault(uuid.UUID(action.approver.removeprefix("user:")), index)

    found = {
        "category": catalog_service.names(
            session, Category, company_id=company_id, ids=list(named["category"])
        ),
        "vendor": catalog_service.names(
            session, Vendor, company_id=company_id, ids=list(named["vendor"])
        ),
        "team": teams_service.names(session, company_id=company_id, ids=list(named["team"])),
    }
    for kind in ("category", "vendor", "team"):
        missing = [
            (index, item_id) for item_id, index in named[kind].items() if item_id not in found[kind]
        ]
        if missing:
            index, item_id = min(missing, key=lambda m: m[0])
            raise ValidationFailed(
                f"rules[{index}] names {kind} {item_id}, which does not exist in this company",
                code=f"invalid_{kind}",
            )
    for user_id, index in sorted(approvers.items(), key=lambda a: a[1]):
        if users_service.active_user(session, company_id=company_id, user_id=user_id) is None:
            raise ValidationFailed(
                f"rules[{index}] names approver user:{user_id}, who is not an active user of "
                "this company",
                code="invalid_approver",
            )


def dry_run(session: Session, *, actor: User, body: EvaluateRequest) -> engine.Decision:
    subject = (
        users_service.get_user_or_404(session, company_id=actor.company_id, user_id=body.user_id)
        if body.user_id is not None
        else actor
    )
    if body.team_id is not None:
        team_ids = frozenset({body.team_id})
    else:
        team_ids = frozenset(users_service.team_ids_for(session, [subject.id]).get(subject.id, []))
    amount = quantize(body.amount, body.currency)
    company = companies_service.get_company_or_404(session, actor.company_id)
    base_currency = company.base_currency
    spend_date = body.spend_date or utcnow().date()
    base_amount = rates_service.convert(
        session,
        company_id=actor.company_id,
        amount=amount,
        currency=body.currency,
        to=base_currency,
        on=spend_date,
        window=get_settings().rate_lookback_days,
    ).amount
    # Where it would leave the budgets now (nothing locked: nothing is written).
    budget_facts: dict[str, Any] = {}
    if company.budget_count:
        would_be = Spend(
            company_id=company.id,
            team_id=body.team_id,
            category_id=body.category_id,
            spend_date=spend_date,
            base_amount=base_amount,
        )
        budget_facts = budgets_service.facts(session, would_be, lock=False)
    facts = engine.Facts(
        amount=base_amount,
        currency=body.currency,
        source=body.source,
        category_id=body.category_id,
        vendor_id=body.vendor_id,
        user_role=subject.role,
        team_ids=team_ids,
        has_receipt=body.has_receipt,
        **budget_facts,
    )
    return engine.evaluate(facts, service.active_rules(session, company=company))


def dry_run_draft(session: Session, *, actor: User, body: PolicyDryRun) -> DryRunRead:
    """What the company's policies would decide for its latest spends with a draft policy: added
    beside the active ones, or replacing one (`policy_id`). Nothing is written. Budgets are left
    out: the spends already count in them, so their conditions would be judged on totals that
    include the very spend being judged."""
    check_references(session, actor.company_id, body.rules)
    kept = [
        p
        for p in service.active_policies(session, company_id=actor.company_id)
        if p.id != body.policy_id
    ]
    draft_id = body.policy_id or uuid.UUID(int=0)
    rules = engine.compile_rules(
        [
            engine.PolicyRule(
                policy_id=p.id, policy_name=p.name, index=i, rule=Rule.model_validate(r)
            )
            for p in kept
            for i, r in enumerate(p.rules)
        ]
        + [
            engine.PolicyRule(policy_id=draft_id, policy_name=body.name, index=i, rule=rule)
            for i, rule in enumerate(body.rules)
        ]
    )
    spends = spends_service.recent(session, company_id=actor.company_id, limit=body.limit)
    submitters = {
        u.id: u
        for u in users_service.by_ids(
            session, company_id=actor.company_id, ids=list({s.user_id for s in spends})
        )
    }
    teams = (
        users_service.team_ids_for(session, list(submitters)) if engine.uses_teams(rules) else {}
    )
    with_receipt = {
        r.spend_id
        for r in receipts_service.receipts_of(
            session, company_id=actor.company_id, spend_ids=[s.id for s in spends]
        )
    }
    items = []
    for spend in spends:
        submitter = submitters[spend.user_id]
        facts = spends_flows.spend_facts(
            spend,
            submitter.role,
            team_ids=frozenset(teams.get(submitter.id, ())),
            has_receipt=spend.id in with_receipt,
        )
        decision = engine.evaluate(facts, rules)
        items.append(
            DryRunItem(
                spend_id=spend.id,
                spend_date=spend.spend_date,
                description=spend.description,
                amount=str(quantize(spend.amount, spend.currency)),
                currency=spend.currency,
                base_amount=str(quantize(spend.base_amount, spend.base_currency)),
                status=str(spend.status),
                outcome_then=(spend.policy_result or {}).get("outcome"),
                outcome=decision.outcome,
                flags=list(decision.flags),
                approvers=list(decision.approvers),
                block_reason=decision.block_reason,
                matched_rules=[
                    MatchedRuleRead.model_validate(m, from_attributes=True)
                    for m in decision.matched_rules
                ],
            )
        )
    outcomes = dict.fromkeys(("approved", "pending", "blocked"), 0)
    for item in items:
        outcomes[item.outcome] += 1
    return DryRunRead(
        evaluated=len(items),
        changed=sum(1 for i in items if i.outcome_then is not None and i.outcome != i.outcome_then),
        outcomes=outcomes,
        items=items,
    )
