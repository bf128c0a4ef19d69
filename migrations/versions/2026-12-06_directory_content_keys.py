"""Directory events without an id: `processed_event.subject` (the person a content key is about),
indexed with the time it was applied, so a replay is weighed against what happened since.

Revision ID: 3f6a2c8e1b94
Revises: 9b3c1e7d5a20
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f6a2c8e1b94"
down_revision: str | None = "9b3c1e7d5a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_event") as batch:
        batch.add_column(sa.Column("subject", sa.String(length=320), nullable=True))
        batch.create_index("ix_processed_event_subject", ["company_id", "subject", "processed_at"])


def downgrade() -> None:
    with op.batch_alter_table("processed_event") as batch:
        batch.drop_index("ix_processed_event_subject")
        batch.drop_column("subject")
