"""Exchange rates: reference rates imported for everyone (`company_id` null) and companies'
own manual rates.

Revision ID: 8f5a2c1d9b74
Revises: 6b3d0e8f2a19
Create Date: 2026-12-06 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "8f5a2c1d9b74"
down_revision: str | None = "6b3d0e8f2a19"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_rate",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=True),
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("rate", sa.Numeric(precision=24, scale=10), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_exchange_rate_company_id_company"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_rate"),
    )
    op.create_index("ix_exchange_rate_pair_date", "exchange_rate", ["base", "quote", "rate_date"])
    op.create_index(
        "ix_exchange_rate_company_pair_date",
        "exchange_rate",
        ["company_id", "base", "quote", "rate_date"],
    )


def downgrade() -> None:
    op.drop_table("exchange_rate")
