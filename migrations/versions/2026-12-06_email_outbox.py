"""Email: a notification is also its email's outbox entry (status, attempts, next try), and
each try to hand it to the SMTP server is recorded.

Revision ID: 7e2c9a4b1d58
Revises: 4d8a2f6c9e31
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "7e2c9a4b1d58"
down_revision: str | None = "4d8a2f6c9e31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("email_status", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("email_context", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("email_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("email_next_attempt_at", spendtrackr.core.db.UTCDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("email_error", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("emailed_at", spendtrackr.core.db.UTCDateTime(), nullable=True))
        batch.create_index("ix_notification_email_due", ["email_status", "email_next_attempt_at"])
    op.create_table(
        "email_attempt",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("attempted_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification.id"],
            name="fk_email_attempt_notification_id_notification",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_email_attempt"),
    )
    op.create_index("ix_email_attempt_notification_id", "email_attempt", ["notification_id"])


def downgrade() -> None:
    op.drop_table("email_attempt")
    with op.batch_alter_table("notification") as batch:
        batch.drop_index("ix_notification_email_due")
        for column in (
            "emailed_at",
            "email_error",
            "email_next_attempt_at",
            "email_attempts",
            "email_context",
            "email_status",
        ):
            batch.drop_column(column)
