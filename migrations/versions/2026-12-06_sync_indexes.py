"""Incremental sync: spends, cards and users are read by `(updated_at, id)` after a cursor.

Revision ID: 2b7f4d9a6e18
Revises: 8c3e5b1f7a62
Create Date: 2026-12-06 08:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "2b7f4d9a6e18"
down_revision: str | None = "8c3e5b1f7a62"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_spend_company_updated": "spend",
    "ix_card_company_updated": "card",
    "ix_user_company_updated": "user",
}


def upgrade() -> None:
    for name, table in INDEXES.items():
        op.create_index(name, table, ["company_id", "updated_at", "id"])


def downgrade() -> None:
    for name, table in INDEXES.items():
        op.drop_index(name, table_name=table)
