"""SCIM 2.0 provisioning: the company's SCIM token (hashed) and the resources identity
providers wrote (Users for users, Groups for teams), kept whole so that they read back.

Revision ID: 6c2a8e4f0b91
Revises: 3b9e7f1c5d28
Create Date: 2026-12-10 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "6c2a8e4f0b91"
down_revision: str | None = "3b9e7f1c5d28"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scim_token",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_scim_token_company_id_company"
        ),
        sa.PrimaryKeyConstraint("company_id", name="pk_scim_token"),
        sa.UniqueConstraint("token_hash", name="uq_scim_token_token_hash"),
    )
    op.create_table(
        "scim_resource",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_scim_resource_company_id_company"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_scim_resource"),
        sa.UniqueConstraint(
            "company_id", "kind", "key", name="uq_scim_resource_company_id_kind_key"
        ),
    )
    op.create_index(
        "ix_scim_resource_company_kind_external",
        "scim_resource",
        ["company_id", "kind", "external_id"],
    )


def downgrade() -> None:
    op.drop_table("scim_resource")
    op.drop_table("scim_token")
