"""Spend reports: the database groups and adds; here the groups get their names."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from spendtrackr.apps.catalog import service as catalog_service
from spendtrackr.apps.catalog.models import Category, Vendor
from spendtrackr.apps.companies import service as companies_service
from spendtrackr.apps.reports.schemas import GroupBy, SpendSummary, SummaryGroup, SummaryItem
from spendtrackr.apps.spends import flows as spend_flows
from spendtrackr.apps.spends import service as spends_service
from spendtrackr.apps.spends.models import SpendStatus
from spendtrackr.apps.teams import service as teams_service
from spendtrackr.apps.users import service as users_service
from spendtrackr.apps.users.models import User
from spendtrackr.apps.users.permissions import Capability, can
from spendtrackr.core.errors import Forbidden

NONE_LABELS = {
    "category": "Uncategorized",
    "vendor": "No vendor",
    "team": "No team",
    "user": "Unknown user",
}


def _labels(
    session: Session, company_id: uuid.UUID, group_by: GroupBy, keys: list[str]
) -> dict[str, str]:
    ids = [uuid.UUID(k) for k in keys]
    if group_by == "category":
        found = catalog_service.names(session, Category, company_id=company_id, ids=ids)
    elif group_by == "vendor":
        found = catalog_service.names(session, Vendor, company_id=company_id, ids=ids)
    elif group_by == "user":
        found = users_service.names(session, company_id=company_id, ids=ids)
    else:
        found = teams_service.names(session, company_id=company_id, ids=ids)
    return {str(k): v for k, v in found.items()}


def spend_summary(
    session: Session,
    *,
    actor: User,
    group_by: GroupBy,
    date_from: date | None,
    date_to: date | None,
    statuses: frozenset[SpendStatus] = frozenset(),
) -> SpendSummary:
    """Finance and admins: the whole company; managers: the spends they may read (their
    reports', their teams' members' and those made for their teams)."""
    if not can(actor.role, Capability.read_team_spends):
        raise Forbidden("Insufficient permissions", code="insufficient_permissions")
    rows = spends_service.summarize(
        session,
        company_id=actor.company_id,
        scope=spend_flows.scope_for(session, actor),
        group_by=group_by,
        date_from=date_from,
        date_to=date_to,
        statuses=statuses,
    )
    if group_by in ("month", "status"):
        labels = {r.key: r.key for r in rows if r.key is not None}
    else:
        labels = _labels(
            session, actor.company_id, group_by, [r.key for r in rows if r.key is not None]
        )
    base = companies_service.get_company_or_404(session, actor.company_id).base_currency

    def label(key: str | None) -> str:
        return labels.get(key, key) if key is not None else NONE_LABELS.get(group_by, "None")

    items = [
        SummaryItem(
            key=r.key,
            label=label(r.key),
            currency=r.currency,
            count=r.count,
            total=r.total,
            base_total=r.base_total,
            base_currency=base,
        )
        for r in rows
    ]
    groups: dict[str | None, SummaryGroup] = {}
    for r in rows:
        group = groups.get(r.key)
        if group is None:
            groups[r.key] = SummaryGroup(
                key=r.key,
                label=label(r.key),
                count=r.count,
                base_total=r.base_total,
                base_currency=base,
            )
        else:
            group.count += r.count
            group.base_total += r.base_total
    ordered = list(groups.values())
    if group_by == "month":
        items.sort(key=lambda i: (i.key or "", i.currency))
        ordered.sort(key=lambda g: g.key or "")
    else:
        items.sort(key=lambda i: (i.currency, -i.total, i.label))
        ordered.sort(key=lambda g: (-g.base_total, g.label))
    return SpendSummary(
        group_by=group_by,
        base_currency=base,
        base_total=sum((g.base_total for g in ordered), Decimal(0)),
        items=items,
        groups=ordered,
    )
