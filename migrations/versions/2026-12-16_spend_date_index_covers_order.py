"""The spends' date index also holds their creation time, so that a page of a range of dates is
ordered from the index alone before any spend is read.

Revision ID: 5d2a9c7e4f18
Revises: 8c4e1a7b3d92
Create Date: 2026-12-16 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5d2a9c7e4f18"
down_revision: str | None = "8c4e1a7b3d92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_spend_company_date", table_name="spend")
    op.create_index("ix_spend_company_date", "spend", ["company_id", "spend_date", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_spend_company_date", table_name="spend")
    op.create_index("ix_spend_company_date", "spend", ["company_id", "spend_date"])
