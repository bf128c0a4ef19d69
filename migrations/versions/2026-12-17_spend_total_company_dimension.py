"""The spend totals' `company` dimension: every spend of a company in one group, by day, currency
and status. A company-wide budget, checked at every submission, then adds up a day's few rows
instead of one row per category; filled in from the category rows, which hold every spend once.

Revision ID: 9c4f1e7a2b63
Revises: 5d2a9c7e4f18
Create Date: 2026-12-17 12:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c4f1e7a2b63"
down_revision: str | None = "5d2a9c7e4f18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# `spends.models.NO_GROUP`, as it stood when this was written.
NO_GROUP = uuid.UUID(int=0)


def upgrade() -> None:
    columns = (
        "company_id",
        "dimension",
        "group_id",
        "spend_date",
        "currency",
        "status",
        "spend_count",
        "total",
        "base_total",
    )
    # Untyped: the rows go from the table to itself in SQL, no value passes through Python.
    total = sa.table("spend_total", *(sa.column(name) for name in columns))
    c = total.c
    by_day = (
        sa.select(
            c.company_id,
            sa.literal("company", sa.String(8)),
            sa.literal(NO_GROUP, sa.Uuid()),
            c.spend_date,
            c.currency,
            c.status,
            sa.func.sum(c.spend_count),
            sa.func.sum(c.total),
            sa.func.sum(c.base_total),
        )
        .where(c.dimension == "category")
        .group_by(c.company_id, c.spend_date, c.currency, c.status)
    )
    op.execute(total.insert().from_select(list(columns), by_day))


def downgrade() -> None:
    op.execute("DELETE FROM spend_total WHERE dimension = 'company'")
