"""Delegation: who stands in for a person between two dates.

Revision ID: 1c6f9b2e8d43
Revises: 9d4e1a7b3c85
Create Date: 2026-12-06 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "1c6f9b2e8d43"
down_revision: str | None = "9d4e1a7b3c85"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delegation",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("delegate_id", sa.Uuid(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_delegation_company_id_company"
        ),
        sa.ForeignKeyConstraint(["created_by"], ["user.id"], name="fk_delegation_created_by_user"),
        sa.ForeignKeyConstraint(
            ["delegate_id"], ["user.id"], name="fk_delegation_delegate_id_user"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_delegation_user_id_user"),
        sa.PrimaryKeyConstraint("user_id", name="pk_delegation"),
    )
    op.create_index("ix_delegation_company_delegate", "delegation", ["company_id", "delegate_id"])


def downgrade() -> None:
    op.drop_table("delegation")
