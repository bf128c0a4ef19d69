"""Policies: per-company rule sets, and the compiled rules the engine runs."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.companies.models import Company, new_policy_version
from spendtrackr.apps.policies import engine
from spendtrackr.apps.policies.models import Policy
from spendtrackr.apps.policies.rules import Rule
from spendtrackr.core.db import apply_changes, get_in_company_or_404, id_param
from spendtrackr.core.errors import Conflict, NotFound
from spendtrackr.core.lru import LruCache
from spendtrackr.core.pagination import PageParams, paginate

POLICY_NOT_FOUND = "Policy not found"


def _dump_rules(rules: list[Rule]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in rules]


def get_policy_or_404(session: Session, *, company_id: uuid.UUID, policy_id: uuid.UUID) -> Policy:
    return get_in_company_or_404(session, Policy, policy_id, company_id, detail=POLICY_NOT_FOUND)


def list_policies(
    session: Session, *, company_id: uuid.UUID, page: PageParams
) -> tuple[int, list[Policy]]:
    stmt = select(Policy).where(Policy.company_id == company_id)
    return paginate(session, stmt.order_by(Policy.created_at.desc(), Policy.id), page)


def create_policy(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    name: str,
    is_active: bool,
    rules: list[Rule],
) -> Policy:
    _policies_change(session, company_id)
    policy = Policy(
        id=uuid.uuid4(),
        company_id=company_id,
        name=name,
        is_active=is_active,
        rules=_dump_rules(rules),
    )
    session.add(policy)
    session.flush()
    audit.record_change(
        session,
        policy,
        "policy.created",
        actor_id=actor_id,
        metadata={"name": name, "is_active": is_active, "rules": policy.rules},
    )
    return policy


def update_policy(
    session: Session,
    *,
    company_id: uuid.UUID,
    actor_id: uuid.UUID,
    policy_id: uuid.UUID,
    changes: dict[str, Any],
) -> Policy:
    policy = get_policy_or_404(session, company_id=company_id, policy_id=policy_id)
    _policies_change(session, company_id)
    if "rules" in changes:
        changes = {**changes, "rules": _dump_rules(changes["rules"])}
    diff = apply_changes(policy, changes)
    session.flush()
    audit.record_change(
        session, policy, "policy.updated", actor_id=actor_id, metadata={"changes": diff}
    )
    return policy


def delete_policy(
    session: Session, *, company_id: uuid.UUID, actor_id: uuid.UUID, policy_id: uuid.UUID
) -> None:
    policy = get_policy_or_404(session, company_id=company_id, policy_id=policy_id)
    _policies_change(session, company_id)
    session.delete(policy)
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="policy.deleted",
        entity_type="policy",
        entity_id=policy_id,
        metadata={"name": policy.name, "rules": policy.rules},
    )


Named = Literal["category", "vendor", "team"]


def ensure_not_named(
    session: Session, *, company_id: uuid.UUID, kind: Named, item_id: uuid.UUID
) -> None:
    """409 `in_use` while a policy of the company, active or not, names this category, vendor
    or team in its conditions: deleting it would leave the rule naming nothing (rules are
    checked against the company's ids when written). A company has tens of policies: their
    rules are read and walked."""
    field = f"{kind}_in"
    rows = session.execute(select(Policy.name, Policy.rules).where(Policy.company_id == company_id))
    naming = sorted(
        name
        for name, rules in rows
        if any(
            item_id in (getattr(condition, field) or ())
            for rule in rules
            for condition in Rule.model_validate(rule).condition.walk()
        )
    )
    if naming:
        shown = ", ".join(f'"{name}"' for name in naming[:5])
        more = f" and {len(naming) - 5} more" if len(naming) > 5 else ""
        raise Conflict(
            f"This {kind} is named by the rules of the "
            f"polic{'y' if len(naming) == 1 else 'ies'} {shown}{more}: take it out of them first",
            code="in_use",
        )


def _policies_change(session: Session, company_id: uuid.UUID) -> None:
    """A new policy version for the company, under its row's exclusive lock, before the policy
    is written: the submissions being decided (they hold the row shared) finish on the rules
    they read first, and the lock comes before the audit chain's, as in every writer of the row."""
    session.execute(
        update(Company)
        .where(Company.id == company_id)
        # A change to the policies is not a change to the company's own fields.
        .values(policy_version=new_policy_version(), updated_at=Company.updated_at)
    )


# Compiled rule sets by (company id, policy version): a spend reads the version with its
# company, and parses and compiles the rules only after a policy changed.
_CacheKey = tuple[uuid.UUID, int]
_compiled: LruCache[_CacheKey, tuple[engine.CompiledRule, ...]] = LruCache(1024)

# The order a company's active policies are compiled in, by the live rules and by a dry run
# of a draft beside them alike.
_RULE_ORDER = (Policy.created_at, Policy.id)

# The version and the active policies in one statement, so that the rules are stored under
# the version they were read with, whatever commits meanwhile.
_ACTIVE = (
    select(Company.policy_version, Policy)
    .outerjoin(Policy, and_(Policy.company_id == Company.id, Policy.is_active))
    .where(Company.id == id_param("company_id"))
    .order_by(*_RULE_ORDER)
)


def active_policies(session: Session, *, company_id: uuid.UUID) -> list[Policy]:
    return list(
        session.scalars(
            select(Policy)
            .where(Policy.company_id == company_id, Policy.is_active)
            .order_by(*_RULE_ORDER)
        )
    )


def active_rules(session: Session, *, company: Company) -> tuple[engine.CompiledRule, ...]:
    """The company's active rules, compiled. Every submission and card purchase asks, with the
    company it read (a submission under the row's shared lock: its version is then the one in
    force until it commits); the policies are read, validated and compiled only when that
    version is new to this process."""
    cached = _compiled.get((company.id, company.policy_version))
    if cached is not None:
        return cached
    rows = session.execute(_ACTIVE, {"company_id": company.id}).all()
    if not rows:
        raise NotFound("Company not found")
    compiled = engine.compile_rules(
        [
            engine.PolicyRule(
                policy_id=p.id, policy_name=p.name, index=i, rule=Rule.model_validate(raw)
            )
            for _, p in rows
            if p is not None
            for i, raw in enumerate(p.rules)
        ]
    )
    _compiled.put((company.id, rows[0].policy_version), compiled)
    return compiled
