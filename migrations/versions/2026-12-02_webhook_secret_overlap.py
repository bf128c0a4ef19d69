"""Webhook secret rotation with an overlap: the replaced secret may stay valid for a while.

Rotating the card-network / directory-sync secret stopped the old one at once, so every card
authorization failed (declined or stood in for by the processor) between the rotation and the
processor's reconfiguration. A rotation may now keep the previous secret valid for up to 7 days
(`previous_expires_in_seconds`); by default it still stops at once.

Revision ID: 5d2e8f1a9c47
Revises: 7e21c4a9b0d3
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "5d2e8f1a9c47"
down_revision: str | None = "7e21c4a9b0d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "company", sa.Column("previous_webhook_secret_hash", sa.String(length=64), nullable=True)
    )
    op.add_column(
        "company",
        sa.Column(
            "previous_webhook_secret_expires_at",
            spendtrackr.core.db.UTCDateTime(),
            nullable=True,
        ),
    )
    op.create_index(
        op.f("ix_company_previous_webhook_secret_hash"),
        "company",
        ["previous_webhook_secret_hash"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_company_previous_webhook_secret_hash"), table_name="company")
    op.drop_column("company", "previous_webhook_secret_expires_at")
    op.drop_column("company", "previous_webhook_secret_hash")
