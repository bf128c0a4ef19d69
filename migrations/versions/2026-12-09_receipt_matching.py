"""Receipts uploaded without a spend, matched to card purchases: a receipt's spend may be empty,
with how matching went and the candidates it found; a card purchase's receipt reminder.

Revision ID: 8a4d2c6e9b17
Revises: 5e1c7a9d3f42
Create Date: 2026-12-09 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "8a4d2c6e9b17"
down_revision: str | None = "5e1c7a9d3f42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("receipt") as batch:
        batch.alter_column("spend_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("match_status", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("candidates", sa.JSON(), nullable=True))
        batch.create_index("ix_receipt_company_match", ["company_id", "match_status"])
    receipt = sa.table("receipt", sa.column("candidates", sa.JSON()))
    op.execute(receipt.update().values(candidates=[]))
    with op.batch_alter_table("receipt") as batch:
        batch.alter_column("candidates", existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table("spend") as batch:
        batch.add_column(
            sa.Column("receipt_reminded_at", spendtrackr.core.db.UTCDateTime(), nullable=True)
        )
        batch.create_index(
            "ix_spend_receipt_reminder", ["source", "receipt_reminded_at", "created_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("spend") as batch:
        batch.drop_index("ix_spend_receipt_reminder")
        batch.drop_column("receipt_reminded_at")
    op.execute(sa.text("DELETE FROM receipt WHERE spend_id IS NULL"))
    with op.batch_alter_table("receipt") as batch:
        batch.drop_index("ix_receipt_company_match")
        batch.drop_column("candidates")
        batch.drop_column("match_status")
        batch.alter_column("spend_id", existing_type=sa.Uuid(), nullable=False)
