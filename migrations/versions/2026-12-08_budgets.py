"""Budgets: an amount per period for a team and/or a category (or the whole company), hard or
soft; and the company's count of them, so that a company without budgets skips them.

Revision ID: 7b3e5d9a2c14
Revises: 4e7a9c2b1d63
Create Date: 2026-12-08 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "7b3e5d9a2c14"
down_revision: str | None = "4e7a9c2b1d63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_budget_company_id_company"
        ),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name="fk_budget_team_id_team"),
        sa.ForeignKeyConstraint(
            ["category_id"], ["category.id"], name="fk_budget_category_id_category"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_budget"),
    )
    op.create_index("ix_budget_company_active", "budget", ["company_id", "is_active"])
    with op.batch_alter_table("company") as batch:
        batch.add_column(
            sa.Column("budget_count", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("company") as batch:
        batch.drop_column("budget_count")
    op.drop_table("budget")
