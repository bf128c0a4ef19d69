"""Notification preferences: per person and kind (`email`, `in_app`, both, neither), the
company's defaults, and the digest; a notification may be an email only (`in_app` false).

Revision ID: 5f1b8d3e7c26
Revises: 7e2c9a4b1d58
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "5f1b8d3e7c26"
down_revision: str | None = "7e2c9a4b1d58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(
            sa.Column("in_app", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_table(
        "notification_preference",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=8), nullable=True),
        sa.Column("updated_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_notification_preference_company_id_company"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name="fk_notification_preference_user_id_user"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_notification_preference"),
    )
    op.create_index(
        "ix_notification_preference_company_id", "notification_preference", ["company_id"]
    )
    op.create_table(
        "notification_default",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=8), nullable=False),
        sa.Column("updated_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_notification_default_company_id_company"
        ),
        sa.PrimaryKeyConstraint("company_id", name="pk_notification_default"),
    )


def downgrade() -> None:
    op.drop_table("notification_default")
    op.drop_table("notification_preference")
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("in_app")
