"""Digests: when each person's last went out, a person's email locale, and the leases that let
one worker run a scheduled job at a time.

Revision ID: 6b3d0e8f2a19
Revises: 1c6f9b2e8d43
Create Date: 2026-12-06 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "6b3d0e8f2a19"
down_revision: str | None = "1c6f9b2e8d43"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_lease"),
    )
    op.create_table(
        "digest_sent",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("sent_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_digest_sent_user_id_user"),
        sa.PrimaryKeyConstraint("user_id", name="pk_digest_sent"),
    )
    with op.batch_alter_table("notification_preference") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification_preference") as batch:
        batch.drop_column("locale")
    op.drop_table("digest_sent")
    op.drop_table("job_lease")
