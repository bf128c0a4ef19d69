"""The replica heartbeat: one row the replica monitors stamp on the primary, whose age on a
read replica tells how far behind it is, whatever the replica's own status says.

Revision ID: 4b8e2d6a9f15
Revises: 9d4f2b7a1c63
Create Date: 2026-12-12 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4b8e2d6a9f15"
down_revision: str | None = "9d4f2b7a1c63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    heartbeat = op.create_table(
        "replica_heartbeat",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("beat_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replica_heartbeat")),
    )
    op.bulk_insert(heartbeat, [{"id": 1, "beat_us": 0}])


def downgrade() -> None:
    op.drop_table("replica_heartbeat")
