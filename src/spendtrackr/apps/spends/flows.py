"""The spend workflow: submit, edit, cancel, decide an approval step, reimburse.

Each use case runs in the request's transaction: the spend, its policy decision, its approval
steps, the notifications and the audit entries commit together or not at all. The spend row is
locked (`FOR UPDATE`) by every change after its creation, so an edit, a cancellation and two
approvers deciding at once are serialized per spend.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from spendtrackr.apps.approvals import flows as approval_flows
from spendtrackr.apps.approvals import service as approvals_service
from spendtrackr.apps.approvals.models import ApprovalStep
from spendtrackr.apps.approvals.schemas import ApprovalRead
from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.budgets import service as budgets_service
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.ledger import flows as ledger_flows
from spendtrackr.apps.notifications import service as notifications
from spendtrackr.apps.policies import engine
from spendtrackr.apps.policies import service as policies_service
from spendtrackr.apps.rates import service as rates_service
from spendtrackr.apps.receipts import service as receipts_service
from spendtrackr.apps.receipts.schemas import ReceiptRead
from spendtrackr.apps.spends import service as spends_service
from spendtrackr.apps.spends.models import Spend, SpendSource, SpendStatus, merge_flags
from spendtrackr.apps.spends.schemas import SpendCreate, SpendFilters, SpendRead, SpendUpdate
from spendtrackr.apps.teams import service as teams_service
from spendtrackr.apps.teams.models import Team
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import User
from spendtrackr.apps.users.permissions import Capability, can
from spendtrackr.core.config import get_settings
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import apply_changes, referenced, utcnow
from spendtrackr.core.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from spendtrackr.core.pagination import Page, SyncParams

RATE_PLACES = Decimal("1e-10")  # as `Spend.fx_rate` keeps it

# --- status changes -----------------------------------------------------------------------------


def _transition(
    session: Session,
    spend: Spend,
    to: SpendStatus,
    *,
    actor_id: uuid.UUID | None,
    company: Company | None = None,
) -> None:
    """Every status change of an existing spend goes through here."""
    spends_service.transition(session, spend, to, actor_id=actor_id)
    ledger_flows.post_status(session, spend, to, company=company)


# --- reading ----------------------------------------------------------------------------------


def scope_for(session: Session, actor: User) -> spends_service.Scope:
    """Employees see their own spends. Managers also see their reports' (`manager_id`), those of
    the members of the teams they manage, and every spend made for one of those teams."""
    if can(actor.role, Capability.read_company_spends):
        return spends_service.Scope(everything=True)
    users = {actor.id}
    teams: set[uuid.UUID] = set()
    if can(actor.role, Capability.read_team_spends):
        company_id = actor.company_id
        users.update(users_service.report_ids(session, company_id=company_id, manager_id=actor.id))
        teams.update(
            teams_service.managed_team_ids(session, company_id=company_id, manager_id=actor.id)
        )
        users.update(users_service.member_ids(session, company_id=company_id, team_ids=teams))
    return spends_service.Scope(user_ids=frozenset(users), team_ids=frozenset(teams))


_READ_FIELDS = tuple(column.key for column in spends_service.READ_COLUMNS)


def to_read(
    session: Session, company_id: uuid.UUID, spends: Sequence[Spend | Row[Any]]
) -> list[SpendRead]:
    """Spends (entities, or rows of `spends_service.READ_COLUMNS`) with their approval steps and
    receipts: two more queries for any number of spends."""
    if not spends:
        return []
    ids = [s.id for s in spends]
    steps: dict[uuid.UUID, list[ApprovalRead]] = {}
    for step in approvals_service.steps_of(session, company_id=company_id, spend_ids=ids):
        steps.setdefault(step.spend_id, []).append(step)
    receipts: dict[uuid.UUID, list[ReceiptRead]] = {}
    for receipt in receipts_service.receipts_of(session, company_id=company_id, spend_ids=ids):
        if receipt.spend_id is not None:  # always: these are the spends' own
            receipts.setdefault(receipt.spend_id, []).append(receipt)
    reads = []
    for spend in spends:
        # A page's rows are zipped with their columns' names: a Row's attribute access is
        # several times slower.
        fields = (
            dict(zip(_READ_FIELDS, spend, strict=True))
            if isinstance(spend, Row)
            else {name: getattr(spend, name) for name in _READ_FIELDS}
        )
        fields["flags"] = merge_flags(fields.pop("system_flags"), fields.pop("policy_flags"))
        fields["approvals"] = steps.get(spend.id, [])
        fields["receipts"] = receipts.get(spend.id, [])
        reads.append(SpendRead.model_validate(fields))
    return reads


def read_one(session: Session, spend: Spend) -> SpendRead:
    """One spend as the API shows it."""
    return to_read(session, spend.company_id, [spend])[0]


def list_spends(
    session: Session, *, actor: User, filters: SpendFilters, page: SyncParams
) -> Page[SpendRead]:
    listed = spends_service.list_spends(
        session,
        company_id=actor.company_id,
        scope=scope_for(session, actor),
        filters=filters,
        page=page,
    )
    return listed.page(to_read(session, actor.company_id, listed.rows))


def visible_spend(
    session: Session, actor: User, spend_id: uuid.UUID, *, for_update: bool = False
) -> Spend:
    spend = spends_service.get_spend_or_404(
        session, company_id=actor.company_id, spend_id=spend_id, for_update=for_update
    )
    if not scope_for(session, actor).allows(spend):
        raise NotFound(spends_service.SPEND_NOT_FOUND)
    return spend


def get_spend(session: Session, *, actor: User, spend_id: uuid.UUID) -> SpendRead:
    return read_one(session, visible_spend(session, actor, spend_id))


# --- submitting and evaluating ----------------------------------------------------------------


def price(
    session: Session,
    spend: Spend,
    base_currency: str,
    *,
    billed: tuple[Decimal, str] | None = None,
) -> None:
    """Fix the spend's amount in the base currency: the same amount in the same currency, else
    converted at the rate of its date (422 `no_rate` without one). A card purchase's `billed`
    amount (what the network charged, in the card's currency) is used as the network gave it
    instead of a rate of ours."""
    if billed is not None and billed[1] == base_currency:
        base_amount = quantize(billed[0], base_currency)
    elif billed is None and spend.currency == base_currency:
        base_amount = spend.amount
    else:
        amount, currency = billed if billed is not None else (spend.amount, spend.currency)
        converted = rates_service.convert(
            session,
            company_id=spend.company_id,
            amount=amount,
            currency=currency,
            to=base_currency,
            on=spend.spend_date,
            window=get_settings().rate_lookback_days,
        )
        base_amount = converted.amount
    spend.base_amount = base_amount
    spend.base_currency = base_currency
    spend.fx_date = spend.spend_date
    if spend.currency == base_currency:
        spend.fx_rate = Decimal(1)
    else:
        with localcontext() as ctx:
            ctx.prec = 34
            spend.fx_rate = (base_amount / spend.amount).quantize(RATE_PLACES)


def settle_tax(spend: Spend) -> None:
    """The tax in the spend's currency: as given, else worked out from the rate as included in
    the amount; 422 `invalid_tax` when it is not less than the amount."""
    if spend.tax_amount is None and spend.tax_rate is not None:
        with localcontext() as ctx:
            ctx.prec = 34
            spend.tax_amount = spend.amount * spend.tax_rate / (100 + spend.tax_rate)
    if spend.tax_amount is not None:
        spend.tax_amount = quantize(spend.tax_amount, spend.currency)
        if spend.tax_amount >= spend.amount:
            raise ValidationFailed(
                f"tax_amount {spend.tax_amount} must be less than the amount {spend.amount}",
                code="invalid_tax",
            )


def _check_references(
    session: Session, company_id: uuid.UUID, fields: dict[str, Any], submitter: User | None
) -> None:
    """Category, vendor and team ids must belong to the caller's company (else 422), and the team
    must be one of the submitter's."""
    for what, model in (("category_id", Category), ("vendor_id", Vendor), ("team_id", Team)):
        if fields.get(what) is not None:
            referenced(session, model, fields[what], company_id, what=what)
    team_id = fields.get("team_id")
    # The team picks the policies and the approving manager: only a member may name it.
    if (
        team_id is not None
        and submitter is not None
        and team_id not in users_service.team_ids_of(session, submitter)
    ):
        raise ValidationFailed("team_id must be one of your teams", code="not_team_member")


def facts_for(
    session: Session,
    spend: Spend,
    submitter: User,
    *,
    has_receipt: bool = False,
    rules: Sequence[engine.CompiledRule] | None = None,
    company: Company,
) -> engine.Facts:
    """The spend's facts for the engine. Teams come from the submitter's verified memberships
    only (a spend's `team_id` narrows them to that team while the submitter belongs to it), and
    are looked up only when a rule asks about teams. The budgets it counts in are locked to the
    commit (`budgets.service`); a company without budgets looks none up."""
    if rules is not None and not engine.uses_teams(rules):
        team_ids: frozenset[uuid.UUID] = frozenset()
    else:
        team_ids = users_service.team_ids_of(session, submitter)
    return spend_facts(
        spend,
        submitter.role,
        team_ids=team_ids,
        has_receipt=has_receipt,
        budgets=budgets_service.facts(session, spend) if company.budget_count else None,
    )


def spend_facts(
    spend: Spend,
    role: str,
    *,
    team_ids: frozenset[uuid.UUID],
    has_receipt: bool,
    budgets: dict[str, Any] | None = None,
) -> engine.Facts:
    """What the engine decides a spend on, from facts looked up already: the submitter's role
    and teams (narrowed to the spend's team while the submitter belongs to it), its receipt,
    and the budgets it counts in."""
    if spend.team_id in team_ids:
        team_ids = frozenset({spend.team_id})
    return engine.Facts(
        amount=spend.base_amount,
        currency=spend.currency,
        source=spend.source,
        category_id=spend.category_id,
        vendor_id=spend.vendor_id,
        user_role=role,
        team_ids=team_ids,
        has_receipt=has_receipt,
        mcc=spend.mcc,
        **(budgets or {}),
    )


def _store_decision(spend: Spend, decision: engine.Decision) -> SpendStatus:
    """Keep the decision on the spend (so anyone can see why) and say where it sends it."""
    spend.policy_flags = list(decision.flags)
    spend.policy_result = {
        "outcome": decision.outcome,
        "matched_rules": [
            {**asdict(m), "policy_id": str(m.policy_id)} for m in decision.matched_rules
        ],
        "approvers": list(decision.approvers),
        "flags": list(decision.flags),
        "block_reason": decision.block_reason,
    }
    return SpendStatus(decision.outcome)


def _act_on_decision(
    session: Session,
    spend: Spend,
    submitter: User,
    decision: engine.Decision,
    *,
    new_spend: bool = False,
) -> list[ApprovalStep]:
    """What follows a decision once the spend has its status: steps and notifications."""
    if decision.outcome == "blocked":
        notifications.notify_owner(
            session,
            spend,
            kind="spend.blocked",
            message=f"Your spend {spends_service.describe(spend)} was blocked: "
            f"{decision.block_reason}",
        )
        return []
    if decision.outcome == "approved":
        return []
    return approval_flows.open_steps(
        session, spend, submitter, decision.approvers, new_spend=new_spend
    )


def apply_decision(
    session: Session,
    spend: Spend,
    submitter: User,
    decision: engine.Decision,
    *,
    actor_id: uuid.UUID | None,
    company: Company | None = None,
) -> None:
    """Decide an existing spend again: store the decision, move its status, act on it."""
    to = _store_decision(spend, decision)
    _transition(session, spend, to, actor_id=actor_id, company=company)
    _act_on_decision(session, spend, submitter, decision)


def _create_decided(
    session: Session,
    spend: Spend,
    submitter: User,
    decision: engine.Decision,
    *,
    actor_id: uuid.UUID | None,
    company: Company,
) -> list[ApprovalStep]:
    """Write a new spend already in the status its decision gives (one INSERT, no UPDATE), and
    record that status as the change from pending the workflow makes."""
    to = _store_decision(spend, decision)
    spend.status = to
    if to is not SpendStatus.pending:
        spend.decided_at = utcnow()
    spends_service.add_spend(session, spend)
    if to is not SpendStatus.pending:
        spends_service.record_status(session, spend, SpendStatus.pending, to, actor_id=actor_id)
        ledger_flows.post_status(session, spend, to, company=company)
    if decision.flags and to is not SpendStatus.blocked:
        notifications.notify_owner(
            session,
            spend,
            kind="spend.flagged",
            message=f"Your spend {spends_service.describe(spend)} was flagged: "
            + ", ".join(f.replace("_", " ") for f in decision.flags),
        )
    return _act_on_decision(session, spend, submitter, decision, new_spend=True)


def evaluate(
    session: Session, spend: Spend, submitter: User, *, company: Company | None = None
) -> engine.Decision:
    company = company or companies_service.share_company(session, spend.company_id)
    rules = policies_service.active_rules(session, company=company)
    attached = receipts_service.has_receipt(session, company_id=spend.company_id, spend_id=spend.id)
    facts = facts_for(session, spend, submitter, has_receipt=attached, rules=rules, company=company)
    decision = engine.evaluate(facts, rules)
    if spend.source == SpendSource.card and decision.outcome == "blocked":
        # The card was charged already: a block found after the purchase cannot undo it, so the
        # spend goes to the admins for review instead of vanishing from the books.
        decision = replace(
            decision,
            outcome="pending",
            approvers=("role:admin",),
            flags=tuple(dict.fromkeys((*decision.flags, "policy_blocked_after_purchase"))),
        )
    return decision


def reevaluate(session: Session, spend: Spend) -> None:
    """Decide again after a fact changed outside an edit (a receipt was read). A pending spend
    whose routing changes gets new steps; otherwise only its policy flags are refreshed (a
    decided spend keeps its status)."""
    submitter = users_service.active_user(
        session, company_id=spend.company_id, user_id=spend.user_id
    )
    if submitter is None:
        return
    decision = evaluate(session, spend, submitter)
    routing = (decision.outcome, list(decision.approvers))
    stored = (spend.policy_result.get("outcome"), spend.policy_result.get("approvers", []))
    if spend.status == SpendStatus.pending and routing != stored:
        approvals_service.close_open_steps(session, company_id=spend.company_id, spend_id=spend.id)
        apply_decision(session, spend, submitter, decision, actor_id=None)
        return
    spend.policy_flags = list(decision.flags)
    spend.policy_result = {**spend.policy_result, "flags": list(decision.flags)}


def submit_spend(session: Session, *, actor: User, body: SpendCreate) -> SpendRead:
    """Check, decide, then write: the policies run on the facts before the row exists, so the
    spend is inserted once, already approved, pending or blocked."""
    fields = body.model_dump()
    company = spends_service.share_company_with_category(
        session, actor.company_id, fields["category_id"]
    )
    _check_references(session, actor.company_id, fields, actor)
    spend = Spend(id=uuid.uuid4(), company_id=actor.company_id, user_id=actor.id, **fields)
    settle_tax(spend)
    ledger_flows.check_open(company, spend.spend_date)
    price(session, spend, company.base_currency)
    duplicate = spends_service.looks_duplicate(session, spend)
    spend.system_flags = ["possible_duplicate"] if duplicate else []
    rules = policies_service.active_rules(session, company=company)
    facts = facts_for(session, spend, actor, has_receipt=False, rules=rules, company=company)
    decision = engine.evaluate(facts, rules)
    steps = _create_decided(session, spend, actor, decision, actor_id=actor.id, company=company)
    return _read_new(spend, steps)


def _read_new(spend: Spend, steps: list[ApprovalStep]) -> SpendRead:
    """A spend this request created: its steps are known and it has no receipts yet."""
    return SpendRead.model_validate(spend).model_copy(
        update={"approvals": [ApprovalRead.model_validate(s) for s in steps], "receipts": []}
    )


def _own_pending_spend(session: Session, actor: User, spend_id: uuid.UUID) -> Spend:
    spend = visible_spend(session, actor, spend_id, for_update=True)
    if spend.user_id != actor.id:
        raise Forbidden("Only the submitter can change this spend", code="not_submitter")
    if spend.status != SpendStatus.pending:
        raise InvalidTransition(f"The spend is {spend.status}: only a pending spend can be changed")
    return spend


# What a card spend keeps from the network: the money moved as the network said.
CARD_FIXED_FIELDS = frozenset({"amount", "currency", "spend_date", "vendor_id"})
# The facts a policy decides on: changing one re-evaluates the spend.
# (The date too: it picks the rate of the base amount and the budgets' period.)
DECISION_FIELDS = frozenset(
    {"amount", "currency", "spend_date", "category_id", "vendor_id", "team_id"}
)
# What the base amount is worked out from: changing one prices the spend again.
PRICE_FIELDS = frozenset({"amount", "currency", "spend_date"})
# What the tax is worked out from, when it was given as a rate.
TAX_INPUTS = frozenset({"amount", "currency", "tax_rate"})


def update_spend(
    session: Session, *, actor: User, spend_id: uuid.UUID, body: SpendUpdate
) -> SpendRead:
    """Edit a pending spend (its submitter only). A change to what the policies decide on
    re-evaluates it from scratch; a card spend's money (amount, currency, date, merchant) is the
    network's and cannot be edited."""
    changes = body.changes()
    spend = _own_pending_spend(session, actor, spend_id)
    if spend.source == SpendSource.card:
        fixed = sorted(CARD_FIXED_FIELDS.intersection(changes))
        if fixed:
            raise ValidationFailed(
                f"a card spend's {', '.join(fixed)} is the card network's and cannot be edited",
                code="card_spend_field_locked",
            )
    _check_references(session, actor.company_id, changes, actor)
    company = companies_service.share_company(session, actor.company_id)
    ledger_flows.check_open(company, spend.spend_date, changes.get("spend_date", spend.spend_date))
    currency = changes.get("currency", spend.currency)
    amount = changes.get("amount", spend.amount)
    rounded = quantize(amount, currency)
    if rounded <= 0:
        raise ValidationFailed(f"amount rounds to {rounded} {currency}", code="invalid_amount")
    if "amount" in changes or "currency" in changes:
        changes = {**changes, "amount": rounded}
    if TAX_INPUTS.intersection(changes) and "tax_amount" not in changes and spend.tax_rate:
        # A new amount (or rate) works the tax out again from the rate.
        changes = {**changes, "tax_amount": None}
    diff = apply_changes(spend, changes)
    settle_tax(spend)
    diff = {**diff, **_tax_diff(diff, spend)}
    if PRICE_FIELDS.intersection(diff):
        price(session, spend, company.base_currency)
    session.flush()
    audit.record_change(
        session, spend, "spend.updated", actor_id=actor.id, metadata={"changes": diff}
    )
    if DECISION_FIELDS.intersection(diff):
        approvals_service.close_open_steps(session, company_id=spend.company_id, spend_id=spend.id)
        decision = evaluate(session, spend, actor, company=company)
        apply_decision(session, spend, actor, decision, actor_id=actor.id, company=company)
    return read_one(session, spend)


def _tax_diff(diff: dict[str, list[Any]], spend: Spend) -> dict[str, list[Any]]:
    """The tax as settled, in place of what was sent (a rate gives an amount)."""
    if "tax_amount" not in diff:
        return {}
    before = diff["tax_amount"][0]
    return {} if before == spend.tax_amount else {"tax_amount": [before, spend.tax_amount]}


def cancel_spend(session: Session, *, actor: User, spend_id: uuid.UUID) -> SpendRead:
    spend = _own_pending_spend(session, actor, spend_id)
    if spend.source == SpendSource.card:
        raise InvalidTransition(
            "A card purchase cannot be cancelled: the card was charged, and only a refund from "
            "the card network gives the money back"
        )
    ledger_flows.check_open(
        companies_service.share_company(session, actor.company_id), spend.spend_date
    )
    approvals_service.close_open_steps(session, company_id=spend.company_id, spend_id=spend.id)
    _transition(session, spend, SpendStatus.cancelled, actor_id=actor.id)
    return read_one(session, spend)


def reimburse_spend(session: Session, *, actor: User, spend_id: uuid.UUID) -> SpendRead:
    spend = spends_service.get_spend_or_404(
        session, company_id=actor.company_id, spend_id=spend_id, for_update=True
    )
    if spend.source == SpendSource.card:
        raise InvalidTransition("A card spend was paid by the card; there is nothing to reimburse")
    if spend.user_id == actor.id:
        raise Forbidden(
            "Nobody reimburses their own spend: another finance user or admin must do it",
            code="separation_of_duties",
        )
    if spend.payout_line_id is not None:
        raise Conflict(
            "The spend is in a payout batch: it is reimbursed when its line is paid",
            code="in_payout",
        )
    _reimburse(session, spend, actor_id=actor.id)
    return read_one(session, spend)


def reimburse_paid(session: Session, *, spend: Spend, actor_id: uuid.UUID) -> None:
    """A payout line holding the spend was paid: the spend is reimbursed."""
    _reimburse(session, spend, actor_id=actor_id)


def _reimburse(session: Session, spend: Spend, *, actor_id: uuid.UUID) -> None:
    _transition(session, spend, SpendStatus.reimbursed, actor_id=actor_id)
    notifications.notify_owner(
        session,
        spend,
        kind="spend.reimbursed",
        message=f"Your spend {spends_service.describe(spend)} was reimbursed",
    )


# --- card spends ----------------------------------------------------------------------------


def card_purchase(
    session: Session,
    *,
    holder: User,
    fields: dict[str, Any],
    base_currency: str,
    billed: tuple[Decimal, str],
) -> Spend | None:
    """The spend a card purchase would be (not written): the network's amount, date and
    merchant, priced in the base currency from what the card was billed. None when the billed
    currency has no rate to the base currency (the purchase is declined)."""
    spend = Spend(
        id=uuid.uuid4(),
        company_id=holder.company_id,
        user_id=holder.id,
        team_id=None,
        **fields,
        source=SpendSource.card,
    )
    try:
        price(session, spend, base_currency, billed=billed)
    except ValidationFailed:
        return None
    return spend


def decide_card_spend(
    session: Session, *, holder: User, purchase: Spend, company: Company
) -> engine.Decision:
    """The policies' decision for a card purchase, before anything is written (a block declines):
    the same facts as for any spend, taken from the purchase."""
    rules = policies_service.active_rules(session, company=company)
    facts = facts_for(session, purchase, holder, rules=rules, company=company)
    return engine.evaluate(facts, rules)


def create_card_spend(
    session: Session, *, holder: User, spend: Spend, decision: engine.Decision, company: Company
) -> Spend:
    """Write the `card` spend of an approved authorization; the policies' decision applies to it
    as to any spend (approved, or pending review by its approvers). The network's purchase is
    a fact: it is written even on a closed day, and booked on the next open one."""
    duplicate = spends_service.looks_duplicate(session, spend)
    spend.system_flags = ["possible_duplicate"] if duplicate else []
    _create_decided(session, spend, holder, decision, actor_id=None, company=company)
    return spend


def learn_tax(session: Session, spend: Spend, tax: Decimal) -> None:
    """Tax read off the spend's receipt, for a spend that has none yet: kept on a spend that
    counts (pending, approved, reimbursed) in open books, and moved from the expense to the tax
    account if the spend was booked already."""
    if spend.tax_amount is not None or spend.status not in (
        SpendStatus.pending,
        SpendStatus.approved,
        SpendStatus.reimbursed,
    ):
        return
    tax = quantize(tax, spend.currency)
    company = companies_service.share_company(session, spend.company_id)
    closed = company.books_closed_through
    if tax <= 0 or tax >= spend.amount or (closed is not None and spend.spend_date <= closed):
        return
    spend.tax_amount = tax
    audit.record_change(
        session,
        spend,
        "spend.updated",
        actor_id=None,
        metadata={"changes": {"tax_amount": [None, tax]}, "from": "receipt"},
    )
    if spend.status is not SpendStatus.pending:
        ledger_flows.post_tax_learnt(session, spend, company)


# --- a card purchase after its authorization --------------------------------------------------


def card_captured(
    session: Session,
    *,
    spend_id: uuid.UUID,
    company: Company,
    amount: Decimal,
    billed: tuple[Decimal, str],
) -> None:
    """The purchase cleared for `amount` in all (its currency; `billed` on the card): that is
    the spend's amount now, priced again from what the card was billed. A spend booked already
    is booked again for the difference."""
    spend = spends_service.get_spend_or_404(
        session, company_id=company.id, spend_id=spend_id, for_update=True
    )
    before_amount, before_base = spend.amount, spend.base_amount
    spend.amount = amount
    price(session, spend, company.base_currency, billed=billed)
    if (spend.amount, spend.base_amount) == (before_amount, before_base):
        return
    session.flush()
    audit.record_change(
        session,
        spend,
        "spend.updated",
        actor_id=None,
        metadata={
            "changes": {
                "amount": [before_amount, spend.amount],
                "base_amount": [before_base, spend.base_amount],
            },
            "from": "card_capture",
        },
    )
    booked = spend.status in (SpendStatus.approved, SpendStatus.reimbursed)
    if booked and spend.base_amount != before_base:
        ledger_flows.post_card_change(
            session,
            spend,
            company,
            base_delta=spend.base_amount - before_base,
            amount_delta=spend.amount - before_amount,
            kind="capture",
        )


def card_voided(session: Session, *, spend_id: uuid.UUID, company: Company, on: date) -> None:
    """The authorization was reversed in full before any capture: the purchase did not happen.
    A pending spend is cancelled; one approved already is credited in full."""
    spend = spends_service.get_spend_or_404(
        session, company_id=company.id, spend_id=spend_id, for_update=True
    )
    if spend.status == SpendStatus.pending:
        approvals_service.close_open_steps(session, company_id=company.id, spend_id=spend.id)
        _transition(session, spend, SpendStatus.cancelled, actor_id=None, company=company)
    elif spend.status in (SpendStatus.approved, SpendStatus.reimbursed):
        card_refunded(
            session,
            company=company,
            holder_id=spend.user_id,
            card_id=spend.card_id,
            purchase_id=spend.id,
            amount=spend.amount,
            currency=spend.currency,
            billed=(spend.base_amount, spend.base_currency),
            merchant=spend.description,
            mcc=spend.mcc,
            on=on,
        )


def card_refunded(
    session: Session,
    *,
    company: Company,
    holder_id: uuid.UUID,
    card_id: uuid.UUID | None,
    purchase_id: uuid.UUID | None,
    amount: Decimal,
    currency: str,
    billed: tuple[Decimal, str],
    merchant: str,
    mcc: str | None,
    on: date,
) -> uuid.UUID:
    """Money back to a card (`amount` in the purchase's currency; `billed` on the card): a
    credit spend (negative amounts), approved, in the purchase's category, vendor and team, so
    that reports, budgets and the ledger net it off. Its id."""
    purchase = (
        spends_service.get_spend_or_404(session, company_id=company.id, spend_id=purchase_id)
        if purchase_id is not None
        else None
    )
    credit = Spend(
        id=uuid.uuid4(),
        company_id=company.id,
        user_id=holder_id,
        amount=amount,
        currency=currency,
        spend_date=on,
        description=f"Refund: {merchant}"[:1000],
        source=SpendSource.card,
        card_id=card_id,
        mcc=mcc,
        refund_of=purchase.id if purchase is not None else None,
        category_id=purchase.category_id if purchase is not None else None,
        vendor_id=purchase.vendor_id if purchase is not None else None,
        team_id=purchase.team_id if purchase is not None else None,
        status=SpendStatus.approved,
        decided_at=utcnow(),
        system_flags=["refund"],
        policy_flags=[],
        policy_result={},
    )
    price(session, credit, company.base_currency, billed=billed)
    credit.amount, credit.base_amount = -credit.amount, -credit.base_amount
    spends_service.add_spend(session, credit)
    spends_service.record_status(
        session, credit, SpendStatus.pending, SpendStatus.approved, actor_id=None
    )
    ledger_flows.post_card_change(
        session,
        credit,
        company,
        base_delta=credit.base_amount,
        amount_delta=credit.amount,
        kind="refund",
    )
    return credit.id
