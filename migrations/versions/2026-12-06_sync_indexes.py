"""Incremental sync: spends, cards, users and receipts are read by `(updated_at, id)` after a
cursor; ledger lines and card authorizations, which never change, by `(created_at, id)`.

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
    "ix_spend_company_updated": ("spend", "updated_at"),
    "ix_card_company_updated": ("card", "updated_at"),
    "ix_user_company_updated": ("user", "updated_at"),
    "ix_receipt_company_updated": ("receipt", "updated_at"),
    # rows that never change: in the order they were written
    "ix_ledger_line_company_created": ("ledger_line", "created_at"),
    "ix_card_authorization_company_created": ("card_authorization", "created_at"),
}


def upgrade() -> None:
    for name, (table, stamp) in INDEXES.items():
        op.create_index(name, table, ["company_id", stamp, "id"])


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
