"""The summary's covering indexes go back to what the list filters need.

They were widened (currency, status, date, amount) so that the summary could group a million
spends from the indexes alone; the company-wide summary now reads `spend_total` instead, so the
extra columns only cost writes (every status change rewrote three of them).

Revision ID: a7c35e90d2f1
Revises: 8d4e2f6a1b37
Create Date: 2026-11-22 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a7c35e90d2f1"
down_revision: str | None = "8d4e2f6a1b37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NARROW = {
    "ix_spend_company_date": ["company_id", "spend_date"],
    "ix_spend_company_category": ["company_id", "category_id"],
    "ix_spend_company_vendor": ["company_id", "vendor_id"],
}
COVERING = {
    "ix_spend_company_date": ["company_id", "spend_date", "currency", "status", "amount"],
    "ix_spend_company_category": [
        "company_id",
        "category_id",
        "currency",
        "status",
        "spend_date",
        "amount",
    ],
    "ix_spend_company_vendor": [
        "company_id",
        "vendor_id",
        "currency",
        "status",
        "spend_date",
        "amount",
    ],
}


def _replace(indexes: dict[str, list[str]]) -> None:
    for name, columns in indexes.items():
        op.drop_index(name, table_name="spend")
        op.create_index(name, "spend", columns, unique=False)


def upgrade() -> None:
    _replace(NARROW)


def downgrade() -> None:
    _replace(COVERING)
