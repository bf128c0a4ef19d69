"""Daily spend totals per category, vendor and team (`spend_total`), filled from the spends.

The company-wide spend summary reads these instead of grouping every spend: over a million spends
the grouping read a million index entries per request (1-1.3 s on the bench machine); the totals
of two years hold some tens of thousands of rows. The application keeps them in step with every
spend change from here on (`spendtrackr.apps.spends.totals`).

Revision ID: 8d4e2f6a1b37
Revises: 5b1c0e7d9a42
Create Date: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "8d4e2f6a1b37"
down_revision: str | None = "5b1c0e7d9a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_GROUP = "0" * 32  # uuid.UUID(int=0) as the CHAR(32) the Uuid type stores
DIMENSIONS = {"category": "category_id", "vendor": "vendor_id", "team": "team_id"}
KEY = ("company_id", "dimension", "group_id", "spend_date", "currency", "status")


def upgrade() -> None:
    op.create_table(
        "spend_total",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("dimension", sa.String(length=8), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("spend_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spend_count", sa.BigInteger(), nullable=False),
        sa.Column("total", spendtrackr.core.db.ExactTotal(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name=op.f("fk_spend_total_company_id_company")
        ),
        sa.PrimaryKeyConstraint(
            "company_id",
            "dimension",
            "group_id",
            "spend_date",
            "currency",
            "status",
            name=op.f("pk_spend_total"),
        ),
    )
    spend = sa.table(
        "spend",
        *(sa.column(name) for name in ("company_id", "spend_date", "currency", "status", "amount")),
        *(sa.column(name) for name in DIMENSIONS.values()),
    )
    totals = sa.table(
        "spend_total",
        *(sa.column(name) for name in (*KEY, "spend_count", "total")),
    )
    # ExactTotal keeps ten-thousandths in an integer on SQLite, a DECIMAL elsewhere.
    if op.get_bind().dialect.name == "sqlite":
        total = sa.func.sum(sa.cast(sa.func.round(spend.c.amount * 10000), sa.Integer))
    else:
        total = sa.func.sum(spend.c.amount)
    for dimension, column in DIMENSIONS.items():
        group = sa.func.coalesce(spend.c[column], sa.literal(NO_GROUP))
        by = (spend.c.company_id, group, spend.c.spend_date, spend.c.currency, spend.c.status)
        query = sa.select(by[0], sa.literal(dimension), *by[1:], sa.func.count(), total).group_by(
            *by
        )
        op.execute(totals.insert().from_select([*KEY, "spend_count", "total"], query))


def downgrade() -> None:
    op.drop_table("spend_total")
