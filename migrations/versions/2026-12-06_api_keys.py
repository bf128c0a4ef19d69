"""API keys for machine clients: kept as their SHA-256, with scopes, expiry and last use.

Revision ID: 8c3e5b1f7a62
Revises: 6a1d9e4c2b77
Create Date: 2026-12-06 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "8c3e5b1f7a62"
down_revision: str | None = "6a1d9e4c2b77"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("expires_at", spendtrackr.core.db.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", spendtrackr.core.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", spendtrackr.core.db.UTCDateTime(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_api_key_company_id_company"
        ),
        sa.ForeignKeyConstraint(["created_by"], ["user.id"], name="fk_api_key_created_by_user"),
        sa.PrimaryKeyConstraint("id", name="pk_api_key"),
        sa.UniqueConstraint("key_hash", name="uq_api_key_key_hash"),
    )
    op.create_index("ix_api_key_company_created", "api_key", ["company_id", "created_at"])


def downgrade() -> None:
    op.drop_table("api_key")
