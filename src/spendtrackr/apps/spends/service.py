"""Spends: the rows, their status machine, who may see them, and duplicate detection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    exists,
    extract,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from spendtrackr.apps.audit import service as audit
from spendtrackr.apps.catalog.models import Category
from spendtrackr.apps.companies.models import Company
from spendtrackr.apps.receipts.models import Receipt
from spendtrackr.apps.spends import totals
from spendtrackr.apps.spends.models import NO_GROUP, Spend, SpendSource, SpendStatus
from spendtrackr.apps.spends.schemas import SpendFilters, SpendRead
from spendtrackr.core.currency import quantize
from spendtrackr.core.db import (
    exact_sum,
    force_index,
    get_in_company_or_404,
    id_param,
    keep_loaded,
    plain,
    utcnow,
)
from spendtrackr.core.errors import InvalidTransition, NotFound
from spendtrackr.core.pagination import Listed, SyncParams, listing

SPEND_NOT_FOUND = "Spend not found"
DUPLICATE_WINDOW = timedelta(days=7)

S = SpendStatus
# The whole status machine. `pending -> pending` is a re-evaluation after an edit.
TRANSITIONS: dict[SpendStatus, frozenset[SpendStatus]] = {
    S.pending: frozenset({S.pending, S.approved, S.rejected, S.blocked, S.cancelled}),
    S.approved: frozenset({S.reimbursed}),
    S.rejected: frozenset(),
    S.blocked: frozenset(),
    S.cancelled: frozenset(),
    S.reimbursed: frozenset(),
}
# Where a new spend may start: the policy decision picks one.
INITIAL = frozenset({S.pending, S.approved, S.blocked})


def describe(spend: Spend) -> str:
    """The spend in a sentence of a notification: `12.50 USD (Taxi)`."""
    return f"{quantize(spend.amount, spend.currency)} {spend.currency}" + (
        f" ({spend.description})" if spend.description else ""
    )


def record_status(
    session: Session,
    spend: Spend,
    current: SpendStatus,
    to: SpendStatus,
    *,
    actor_id: uuid.UUID | None,
) -> None:
    audit.record_change(
        session,
        spend,
        f"spend.{to}",
        actor_id=actor_id,
        metadata={"from": current.value, "to": to.value},
    )


def transition(
    session: Session, spend: Spend, to: SpendStatus, *, actor_id: uuid.UUID | None
) -> None:
    current = SpendStatus(spend.status)
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(f"The spend is {current}: it cannot become {to}")
    spend.status = to
    now = utcnow()
    if to in (S.approved, S.rejected, S.blocked):
        spend.decided_at = now
    if to is S.reimbursed:
        spend.reimbursed_at = now
    if to is not current:
        record_status(session, spend, current, to, actor_id=actor_id)


def add_spend(session: Session, spend: Spend) -> None:
    """Insert a new spend (its status already decided) and record its creation."""
    assert SpendStatus(spend.status) in INITIAL
    session.add(spend)
    session.flush()
    audit.record_change(
        session,
        spend,
        "spend.created",
        actor_id=spend.user_id,
        metadata={
            "amount": spend.amount,
            "currency": spend.currency,
            "source": spend.source,
            "spend_date": spend.spend_date,
        },
    )


def get_spend_or_404(
    session: Session, *, company_id: uuid.UUID, spend_id: uuid.UUID, for_update: bool = False
) -> Spend:
    return get_in_company_or_404(
        session, Spend, spend_id, company_id, detail=SPEND_NOT_FOUND, for_update=for_update
    )


@dataclass(frozen=True, slots=True)
class Scope:
    """Which spends of a company someone may read: all, or those of some users and teams."""

    everything: bool = False
    user_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    team_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)

    def clause(self) -> ColumnElement[bool] | None:
        if self.everything:
            return None
        parts: list[ColumnElement[bool]] = []
        if self.user_ids:
            parts.append(Spend.user_id.in_(self.user_ids))
        if self.team_ids:
            parts.append(Spend.team_id.in_(self.team_ids))
        return or_(*parts) if parts else false()

    def allows(self, spend: Spend) -> bool:
        return self.everything or spend.user_id in self.user_ids or spend.team_id in self.team_ids


def _filtered(company_id: uuid.UUID, scope: Scope, filters: SpendFilters) -> Select[Any]:
    stmt = select(Spend).where(Spend.company_id == company_id)
    clause = scope.clause()
    if clause is not None:
        stmt = stmt.where(clause)
    if filters.status is not None:
        stmt = stmt.where(Spend.status == filters.status)
    if filters.user_id is not None:
        stmt = stmt.where(Spend.user_id == filters.user_id)
    if filters.category_id is not None:
        stmt = stmt.where(Spend.category_id == filters.category_id)
    if filters.vendor_id is not None:
        stmt = stmt.where(Spend.vendor_id == filters.vendor_id)
    if filters.date_from is not None:
        stmt = stmt.where(Spend.spend_date >= filters.date_from)
    if filters.date_to is not None:
        stmt = stmt.where(Spend.spend_date <= filters.date_to)
    if filters.min_amount is not None:
        stmt = stmt.where(Spend.amount >= filters.min_amount)
    if filters.max_amount is not None:
        stmt = stmt.where(Spend.amount <= filters.max_amount)
    return stmt


# A list's order: the newest submission first, the id breaking ties (a page read by its ids
# first keeps the same order).
NEWEST_FIRST = (Spend.created_at.desc(), Spend.id.desc())

# The columns a SpendRead shows (its flags are the system's and the policies' merged): a page of
# spends is read as plain rows of these, not as entities.
READ_COLUMNS = (
    *(getattr(Spend, name) for name in SpendRead.model_fields if name in Spend.__table__.c),
    Spend.system_flags,
    Spend.policy_flags,
)


def list_spends(
    session: Session,
    *,
    company_id: uuid.UUID,
    scope: Scope,
    filters: SpendFilters,
    page: SyncParams,
) -> Listed:
    """A page of the spends `scope` may see, newest first (or by cursor, in the order they
    changed), as rows of READ_COLUMNS."""
    stmt = (
        _filtered(company_id, scope, filters)
        .with_only_columns(*READ_COLUMNS)
        .order_by(*NEWEST_FIRST)
    )
    index = None if page.by_cursor else _page_index(scope, filters, utcnow().date())
    if index is not None:
        stmt = force_index(stmt, Spend, index)
    # Every change to a company's spends (and to who may see them) writes an audit entry, so the
    # chain head's position is the version of the data the total depends on.
    version = audit.head_seq(session, company_id=company_id)
    count_key = ("spends", company_id, version, scope, filters.model_dump_json())
    # The whole company, unfiltered (an integration syncing every change): nothing narrower
    # than the company and the cursor picks the rows.
    whole = scope.everything and filters == SpendFilters()
    return listing(
        session,
        stmt,
        page,
        updated=Spend.updated_at,
        ident=Spend.id,
        count_key=count_key,
        keyset_index="ix_spend_company_updated" if whole else None,
        rows_of=_rows_of_page if index == "ix_spend_company_date" else None,
    )


def _rows_of_page(page: Select[Any]) -> Select[Any]:
    """The spends of a page picked through the dates' index: that index holds each spend's
    creation time, so the page's ids are sorted from the index alone, and only the fifty spends
    chosen are read (rather than every spend of the range, each read whole into the sort)."""
    chosen = page.with_only_columns(Spend.id).subquery("chosen")
    return select(*READ_COLUMNS).join(chosen, Spend.id == chosen.c.id).order_by(*NEWEST_FIRST)


def _page_index(scope: Scope, filters: SpendFilters, today: date) -> str | None:
    """The index that answers a page, newest first, in order. MariaDB weighs the nine indexes
    that start with the company by dives into each (half of a page's CPU in MariaDB), and, for
    one person's spends, chose the company's `created` index and read it back from the newest
    spend until fifty were theirs and passed the filters: 70 ms a page for an employee of the
    1M tenant, up to 900 ms with a status, against 1-4 ms through their own. A range of dates
    is left to it (it reads (company, user, date) for one person's, as it should), but for one
    that ends a while back (`_dated_index`)."""
    if filters.date_from is not None or filters.date_to is not None:
        return _dated_index(scope, filters, today)
    if filters.user_id is not None or (not scope.everything and _one_person(scope)):
        return "ix_spend_company_user_created"
    if not scope.everything or filters.model_dump(exclude_none=True):
        return None  # a manager's people, a status, a category...: the optimizer weighs them
    return "ix_spend_company_created"


def _dated_index(scope: Scope, filters: SpendFilters, today: date) -> str | None:
    """A spend is entered soon after its date, so the `created` index, read from the newest,
    reaches a range of dates only after every spend dated since its end, each of them read
    whole to see its date. MariaDB reckons the range's spends spread evenly through that index
    and read it so even for a year long past (docs/DESIGN.md). The dates' own index holds each
    spend's creation time: it sorts the range's ids without reading a spend (see
    `_rows_of_page`), about a tenth of the cost a day of the other way skips. So the dates'
    index, unless the range ends within a tenth of its length of today."""
    if filters.date_from is None or filters.date_to is None or filters.user_id is not None:
        return None
    if not scope.everything:
        return None  # someone's people: (company, user, date) for each, the optimizer's pick
    length = filters.date_to - filters.date_from
    return "ix_spend_company_date" if (today - filters.date_to) * 10 > length else None


def _one_person(scope: Scope) -> bool:
    return len(scope.user_ids) == 1 and not scope.team_ids


# Built once (see core/db.py). The category is joined within the company only, so another
# company's id finds none; a NULL id (no category) finds none either.
_COMPANY_AND_CATEGORY = (
    select(Company, Category)
    .outerjoin(
        Category,
        and_(Category.id == id_param("category_id"), Category.company_id == Company.id),
    )
    .where(Company.id == id_param("company_id"))
    .with_for_update(read=True)
    .execution_options(populate_existing=True)
)


def share_company_with_category(
    session: Session, company_id: uuid.UUID, category_id: uuid.UUID | None
) -> Company:
    """The company under a shared lock held to the commit (`companies.service.share_company`),
    and the category a new spend names, read by the same statement and kept in the session,
    where the reference check and the ledger's posting find it without a query of their own.
    The category's row is share-locked too: it cannot be changed or removed under the spend
    being written."""
    row = session.execute(
        _COMPANY_AND_CATEGORY, {"company_id": company_id, "category_id": category_id}
    ).one_or_none()
    if row is None:
        raise NotFound("Company not found")
    company, category = row
    if category is not None:
        keep_loaded(session, category)
    return company


# Built once (see core/db.py). A missing category or vendor is a NULL parameter, which equals
# nothing: the check matches on the one that is given.
_DUPLICATE = force_index(
    select(Spend.id)
    .where(
        Spend.company_id == id_param("company_id"),
        Spend.user_id == id_param("user_id"),
        Spend.spend_date == bindparam("spend_date"),
        Spend.base_amount == bindparam("base_amount"),
        Spend.id != id_param("spend_id"),
        Spend.status != S.cancelled,
        Spend.created_at >= bindparam("since"),
        or_(
            Spend.category_id == id_param("category_id"),
            Spend.vendor_id == id_param("vendor_id"),
        ),
    )
    .limit(1),
    # Its equalities are this index's first four columns. Left to weigh the table's indexes,
    # MariaDB spent three times the CPU choosing it as reading it.
    Spend,
    "ix_spend_company_user_date",
)


def looks_duplicate(session: Session, spend: Spend) -> bool:
    """Same submitter, date and amount in the base currency (a purchase entered once in its own
    currency and once converted is the same purchase), and the same category or vendor,
    recently."""
    if spend.category_id is None and spend.vendor_id is None:
        return False
    # Not flushed first: this transaction writes no other spend, and the spend itself is left out.
    found = plain(session).scalar(
        _DUPLICATE,
        {
            "company_id": spend.company_id,
            "user_id": spend.user_id,
            "spend_date": spend.spend_date,
            "base_amount": spend.base_amount,
            "spend_id": spend.id,
            "since": utcnow() - DUPLICATE_WINDOW,
            "category_id": spend.category_id,
            "vendor_id": spend.vendor_id,
        },
    )
    return found is not None


def any_spend(session: Session, *, company_id: uuid.UUID) -> bool:
    return (
        session.scalar(select(Spend.id).where(Spend.company_id == company_id).limit(1)) is not None
    )


def add_system_flag(spend: Spend, flag: str) -> None:
    if flag not in spend.system_flags:
        spend.system_flags = [*spend.system_flags, flag]


@dataclass(frozen=True, slots=True)
class SummaryRow:
    key: str | None
    currency: str
    count: int
    total: Decimal
    base_total: Decimal


def summarize(
    session: Session,
    *,
    company_id: uuid.UUID,
    scope: Scope,
    group_by: str,
    date_from: date | None,
    date_to: date | None,
    statuses: frozenset[SpendStatus] = frozenset(),
    from_totals: bool = True,
) -> list[SummaryRow]:
    """Count, total and base-currency total per group and currency: currencies are never added
    together, their base amounts are.

    The whole company's summary adds up the daily totals (`spends.totals`), except by user; a
    manager's, and the summary by user, group the spends themselves (over indexes that lead with
    company_id). `from_totals=False` always reads the spends (the tests compare the two)."""
    if from_totals and scope.everything and group_by != "user":
        rows = totals.summarize(
            session,
            company_id=company_id,
            group_by=group_by,
            date_from=date_from,
            date_to=date_to,
            statuses=sorted(s.value for s in statuses),
        )
        return [_summary_row(group_by, tuple(row)) for row in rows]
    columns: list[Any]
    if group_by == "month":
        columns = [extract("year", Spend.spend_date), extract("month", Spend.spend_date)]
    else:
        columns = [
            {
                "category": Spend.category_id,
                "vendor": Spend.vendor_id,
                "user": Spend.user_id,
                "team": Spend.team_id,
                "status": Spend.status,
            }[group_by]
        ]
    dialect = session.get_bind().dialect.name
    total = exact_sum(Spend.amount, dialect)
    base_total = exact_sum(Spend.base_amount, dialect)
    stmt = _filtered(company_id, scope, SpendFilters(date_from=date_from, date_to=date_to))
    if statuses:
        stmt = stmt.where(Spend.status.in_(sorted(statuses)))
    stmt = stmt.with_only_columns(
        *columns, Spend.currency, func.count(), total, base_total
    ).group_by(*columns, Spend.currency)
    return [_summary_row(group_by, tuple(row)) for row in session.execute(stmt)]


def _summary_row(group_by: str, values: tuple[Any, ...]) -> SummaryRow:
    """(group key..., currency, count, exact total, exact base total) as a SummaryRow."""
    keys, (currency, count, amount, base) = values[:-4], values[-4:]
    key: str | None
    if group_by == "month":
        key = f"{int(keys[0]):04d}-{int(keys[1]):02d}"
    elif keys[0] is None or keys[0] == NO_GROUP:
        key = None
    else:
        key = str(keys[0])
    return SummaryRow(
        key=key,
        currency=str(currency),
        count=int(count),
        total=Decimal(amount),
        base_total=Decimal(base),
    )


def period_stats(session: Session, *, company_id: uuid.UUID, since: datetime) -> dict[str, int]:
    """For a digest: spends submitted since `since`, and the company's pending and approved
    manual spends still to reimburse."""
    submitted = session.scalar(
        select(func.count()).where(Spend.company_id == company_id, Spend.created_at >= since)
    )
    pending = session.scalar(
        select(func.count()).where(Spend.company_id == company_id, Spend.status == S.pending)
    )
    to_reimburse = session.scalar(
        select(func.count()).where(
            Spend.company_id == company_id,
            Spend.status == S.approved,
            Spend.source == SpendSource.manual,
        )
    )
    return {
        "submitted": int(submitted or 0),
        "pending": int(pending or 0),
        "to_reimburse": int(to_reimburse or 0),
    }


def card_spends_without_receipt(
    session: Session, *, company_id: uuid.UUID, user_id: uuid.UUID, around: date | None, days: int
) -> list[Any]:
    """The holder's card purchases without a receipt (dated within `days` of `around` when
    given), as (id, amount, currency, spend_date, description) rows."""
    s = Spend
    stmt = select(s.id, s.amount, s.currency, s.spend_date, s.description).where(
        s.company_id == company_id,
        s.user_id == user_id,
        s.source == SpendSource.card,
        s.amount > 0,
        s.status.in_((SpendStatus.pending, SpendStatus.approved, SpendStatus.reimbursed)),
        ~exists().where(Receipt.company_id == company_id, Receipt.spend_id == s.id),
    )
    if around is not None:
        stmt = stmt.where(
            s.spend_date >= around - timedelta(days=days),
            s.spend_date <= around + timedelta(days=days),
        )
    return list(session.execute(stmt.order_by(s.spend_date.desc()).limit(200)))


def missing_receipts(session: Session, *, before: datetime, limit: int = 500) -> list[Spend]:
    """Card purchases older than `before` without a receipt whose holder was not reminded yet."""
    s = Spend
    return list(
        session.scalars(
            select(s)
            .where(
                s.source == SpendSource.card,
                s.receipt_reminded_at.is_(None),
                s.created_at < before,
                s.amount > 0,
                s.status.in_((SpendStatus.pending, SpendStatus.approved, SpendStatus.reimbursed)),
                ~exists().where(Receipt.company_id == s.company_id, Receipt.spend_id == s.id),
            )
            .order_by(s.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def recent(session: Session, *, company_id: uuid.UUID, limit: int) -> list[Spend]:
    """The company's latest spends by submission (refunds left out: no policy decides them)."""
    return list(
        session.scalars(
            select(Spend)
            .where(Spend.company_id == company_id, Spend.refund_of.is_(None))
            .order_by(*NEWEST_FIRST)
            .limit(limit)
        )
    )
