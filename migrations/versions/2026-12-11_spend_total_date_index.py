"""An index of the daily totals by company, dimension and day, for budgets over every group.

Revision ID: 9d4f2b7a1c63
Revises: 6c2a8e4f0b91
Create Date: 2026-12-11 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9d4f2b7a1c63"
down_revision: str | None = "6c2a8e4f0b91"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_spend_total_company_dimension_date",
        "spend_total",
        ["company_id", "dimension", "spend_date"],
    )


def downgrade() -> None:
    op.drop_index("ix_spend_total_company_dimension_date", table_name="spend_total")
