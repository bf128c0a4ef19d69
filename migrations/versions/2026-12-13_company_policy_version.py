"""The company's policy version: moved on by every change to its policies, it keys the compiled
rules each process keeps, so a spend no longer reads the policies' versions.

Revision ID: 7e1c9a3f5d28
Revises: 4b8e2d6a9f15
Create Date: 2026-12-13 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e1c9a3f5d28"
down_revision: str | None = "4b8e2d6a9f15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("company") as batch:
        batch.add_column(
            sa.Column("policy_version", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("company") as batch:
        batch.drop_column("policy_version")
