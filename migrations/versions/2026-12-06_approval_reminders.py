"""Approval reminders and escalation: when a step opened, when the worker looks at it next, what
it did; each company's reminder and escalation hours.

Revision ID: 9d4e1a7b3c85
Revises: 5f1b8d3e7c26
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "9d4e1a7b3c85"
down_revision: str | None = "5f1b8d3e7c26"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMPS = ("opened_at", "next_nudge_at", "reminded_at", "escalated_at")


def upgrade() -> None:
    with op.batch_alter_table("approval_step") as batch:
        for name in STAMPS:
            batch.add_column(sa.Column(name, spendtrackr.core.db.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("escalated_to_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("escalated_to_role", sa.String(length=16), nullable=True))
        batch.create_foreign_key(
            "fk_approval_step_escalated_to_id_user", "user", ["escalated_to_id"], ["id"]
        )
        batch.create_index("ix_approval_step_nudge", ["status", "next_nudge_at"])
    # Steps open before this release are looked at by the next worker.
    steps = sa.table(
        "approval_step",
        sa.column("status", sa.String()),
        sa.column("created_at", spendtrackr.core.db.UTCDateTime()),
        sa.column("opened_at", spendtrackr.core.db.UTCDateTime()),
        sa.column("next_nudge_at", spendtrackr.core.db.UTCDateTime()),
    )
    op.execute(
        steps.update()
        .where(steps.c.status == "pending")
        .values(opened_at=steps.c.created_at, next_nudge_at=steps.c.created_at)
    )
    with op.batch_alter_table("company") as batch:
        batch.add_column(
            sa.Column("approval_reminder_hours", sa.Integer(), nullable=False, server_default="24")
        )
        batch.add_column(
            sa.Column(
                "approval_escalation_hours", sa.Integer(), nullable=False, server_default="72"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("company") as batch:
        batch.drop_column("approval_escalation_hours")
        batch.drop_column("approval_reminder_hours")
    with op.batch_alter_table("approval_step") as batch:
        batch.drop_index("ix_approval_step_nudge")
        batch.drop_constraint("fk_approval_step_escalated_to_id_user", type_="foreignkey")
        batch.drop_column("escalated_to_role")
        batch.drop_column("escalated_to_id")
        for name in reversed(STAMPS):
            batch.drop_column(name)
