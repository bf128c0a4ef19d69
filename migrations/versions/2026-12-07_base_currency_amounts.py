"""Amounts in the company's base currency: every spend keeps its amount as entered and, fixed at
submission, its amount in the base currency with the rate and the rate's day; the daily totals
add up both; ledger lines keep the amount as entered and the rate beside the booked amount; a card
authorization keeps what the card was billed.

Existing spends in their company's base currency get rate 1. A spend in another currency is
converted at the exchange rates already imported (the latest on or before its date, directly,
inverted or crossed through the euro); if one has none, the upgrade stops and says which: import
the rates (`spendtrackr rates import`, which works at the previous revision) and upgrade again.
Ledger lines already written stay in the currency they were booked in (rate 1 to themselves).

Revision ID: 4e7a9c2b1d63
Revises: 8f5a2c1d9b74
Create Date: 2026-12-07 08:00:00
"""

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db
from spendtrackr.core.currency import quantize

revision: str = "4e7a9c2b1d63"
down_revision: str | None = "8f5a2c1d9b74"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RATE = sa.Numeric(precision=24, scale=10)
MONEY = sa.Numeric(precision=18, scale=4)
PIVOT = "EUR"

spend = sa.table(
    "spend",
    sa.column("id", sa.Uuid()),
    sa.column("company_id", sa.Uuid()),
    sa.column("amount", MONEY),
    sa.column("currency", sa.String()),
    sa.column("spend_date", sa.Date()),
    sa.column("status", sa.String()),
    sa.column("category_id", sa.Uuid()),
    sa.column("vendor_id", sa.Uuid()),
    sa.column("team_id", sa.Uuid()),
    sa.column("base_amount", MONEY),
    sa.column("base_currency", sa.String()),
    sa.column("fx_rate", RATE),
    sa.column("fx_date", sa.Date()),
)
company = sa.table("company", sa.column("id", sa.Uuid()), sa.column("base_currency", sa.String()))
rate_table = sa.table(
    "exchange_rate",
    sa.column("company_id", sa.Uuid()),
    sa.column("rate_date", sa.Date()),
    sa.column("base", sa.String()),
    sa.column("quote", sa.String()),
    sa.column("rate", RATE),
)
totals = sa.table(
    "spend_total",
    sa.column("company_id", sa.Uuid()),
    sa.column("dimension", sa.String()),
    sa.column("group_id", sa.Uuid()),
    sa.column("spend_date", sa.Date()),
    sa.column("currency", sa.String()),
    sa.column("status", sa.String()),
    sa.column("total", spendtrackr.core.db.ExactTotal()),
    sa.column("base_total", spendtrackr.core.db.ExactTotal()),
)
NO_GROUP = uuid.UUID(int=0)


def _latest(conn: Any, company_id: Any, base: str, quote: str, on: date) -> Decimal | None:
    rows = conn.execute(
        sa.select(rate_table.c.base, rate_table.c.rate, rate_table.c.company_id)
        .where(
            sa.or_(rate_table.c.company_id == company_id, rate_table.c.company_id.is_(None)),
            sa.or_(
                sa.and_(rate_table.c.base == base, rate_table.c.quote == quote),
                sa.and_(rate_table.c.base == quote, rate_table.c.quote == base),
            ),
            rate_table.c.rate_date <= on,
        )
        .order_by(rate_table.c.rate_date.desc(), rate_table.c.company_id.is_(None))
        .limit(1)
    ).first()
    if rows is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 34
        return Decimal(rows.rate) if rows.base == base else Decimal(1) / Decimal(rows.rate)


def _rate(conn: Any, company_id: Any, base: str, quote: str, on: date) -> Decimal | None:
    direct = _latest(conn, company_id, base, quote, on)
    if direct is not None or PIVOT in (base, quote):
        return direct
    to_base = _latest(conn, company_id, PIVOT, base, on)
    to_quote = _latest(conn, company_id, PIVOT, quote, on)
    if to_base is None or to_quote is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 34
        return to_quote / to_base


def upgrade() -> None:
    with op.batch_alter_table("spend") as batch:
        batch.add_column(sa.Column("base_amount", MONEY, nullable=True))
        batch.add_column(sa.Column("base_currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("fx_rate", RATE, nullable=True))
        batch.add_column(sa.Column("fx_date", sa.Date(), nullable=True))
    with op.batch_alter_table("spend_total") as batch:
        batch.add_column(
            sa.Column(
                "base_total",
                spendtrackr.core.db.ExactTotal(),
                nullable=False,
                server_default=sa.text("0"),
            )
        )
    base_of = (
        sa.select(company.c.base_currency)
        .where(company.c.id == spend.c.company_id)
        .scalar_subquery()
    )
    op.execute(
        spend.update()
        .where(spend.c.currency == base_of)
        .values(
            base_amount=spend.c.amount,
            base_currency=spend.c.currency,
            fx_rate=1,
            fx_date=spend.c.spend_date,
        )
    )
    total_base_of = (
        sa.select(company.c.base_currency)
        .where(company.c.id == totals.c.company_id)
        .scalar_subquery()
    )
    op.execute(
        totals.update().where(totals.c.currency == total_base_of).values(base_total=totals.c.total)
    )
    conn = op.get_bind()
    foreign = conn.execute(
        sa.select(spend, company.c.base_currency.label("company_base"))
        .join(company, company.c.id == spend.c.company_id)
        .where(spend.c.base_amount.is_(None))
    ).all()
    added: dict[tuple[Any, ...], Decimal] = {}
    for row in foreign:
        rate = _rate(conn, row.company_id, row.currency, row.company_base, row.spend_date)
        if rate is None:
            raise RuntimeError(
                f"spend {row.id}: no {row.currency}->{row.company_base} exchange rate on or "
                f"before {row.spend_date}; import the rates (spendtrackr rates import FILE) "
                "and run the upgrade again"
            )
        amount = Decimal(row.amount)
        with localcontext() as ctx:
            ctx.prec = 34
            base_amount = quantize(amount * rate, row.company_base)
            fx_rate = (base_amount / amount).quantize(Decimal("1e-10"))
        conn.execute(
            spend.update()
            .where(spend.c.id == row.id)
            .values(
                base_amount=base_amount,
                base_currency=row.company_base,
                fx_rate=fx_rate,
                fx_date=row.spend_date,
            )
        )
        for dimension, group in (
            ("category", row.category_id),
            ("vendor", row.vendor_id),
            ("team", row.team_id),
        ):
            key = (row.company_id, dimension, group, row.spend_date, row.currency, row.status)
            added[key] = added.get(key, Decimal(0)) + base_amount
    for (company_id, dimension, group, day, currency, status), value in added.items():
        conn.execute(
            totals.update()
            .where(
                totals.c.company_id == company_id,
                totals.c.dimension == dimension,
                totals.c.group_id == (NO_GROUP if group is None else group),
                totals.c.spend_date == day,
                totals.c.currency == currency,
                totals.c.status == status,
            )
            .values(
                base_total=totals.c.base_total
                + sa.bindparam("v", value, type_=totals.c.base_total.type)
            )
        )
    with op.batch_alter_table("spend") as batch:
        batch.alter_column("base_amount", existing_type=MONEY, nullable=False)
        batch.alter_column("base_currency", existing_type=sa.String(length=3), nullable=False)
        batch.alter_column("fx_rate", existing_type=RATE, nullable=False)
        batch.alter_column("fx_date", existing_type=sa.Date(), nullable=False)
        batch.drop_index("ix_spend_company_user_date")
        batch.create_index(
            "ix_spend_company_user_date", ["company_id", "user_id", "spend_date", "base_amount"]
        )

    with op.batch_alter_table("card_authorization") as batch:
        batch.add_column(sa.Column("billed_amount", MONEY, nullable=True))
        batch.add_column(sa.Column("billed_currency", sa.String(length=3), nullable=True))
    auths = sa.table(
        "card_authorization",
        sa.column("amount", MONEY),
        sa.column("currency", sa.String()),
        sa.column("billed_amount", MONEY),
        sa.column("billed_currency", sa.String()),
    )
    op.execute(
        auths.update().values(billed_amount=auths.c.amount, billed_currency=auths.c.currency)
    )
    with op.batch_alter_table("card_authorization") as batch:
        batch.alter_column("billed_amount", existing_type=MONEY, nullable=False)
        batch.alter_column("billed_currency", existing_type=sa.String(length=3), nullable=False)

    with op.batch_alter_table("ledger_line") as batch:
        batch.add_column(sa.Column("original_amount", MONEY, nullable=True))
        batch.add_column(sa.Column("original_currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("fx_rate", RATE, nullable=True))
    lines = sa.table(
        "ledger_line",
        sa.column("debit", MONEY),
        sa.column("credit", MONEY),
        sa.column("currency", sa.String()),
        sa.column("original_amount", MONEY),
        sa.column("original_currency", sa.String()),
        sa.column("fx_rate", RATE),
    )
    op.execute(
        lines.update().values(
            original_amount=lines.c.debit + lines.c.credit,
            original_currency=lines.c.currency,
            fx_rate=1,
        )
    )
    with op.batch_alter_table("ledger_line") as batch:
        batch.alter_column("original_amount", existing_type=MONEY, nullable=False)
        batch.alter_column("original_currency", existing_type=sa.String(length=3), nullable=False)
        batch.alter_column("fx_rate", existing_type=RATE, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_line") as batch:
        batch.drop_column("fx_rate")
        batch.drop_column("original_currency")
        batch.drop_column("original_amount")
    with op.batch_alter_table("card_authorization") as batch:
        batch.drop_column("billed_currency")
        batch.drop_column("billed_amount")
    with op.batch_alter_table("spend") as batch:
        batch.drop_index("ix_spend_company_user_date")
        batch.create_index(
            "ix_spend_company_user_date", ["company_id", "user_id", "spend_date", "amount"]
        )
        batch.drop_column("fx_date")
        batch.drop_column("fx_rate")
        batch.drop_column("base_currency")
        batch.drop_column("base_amount")
    with op.batch_alter_table("spend_total") as batch:
        batch.drop_column("base_total")
