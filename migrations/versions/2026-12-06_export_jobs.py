"""Export jobs: an accounting export asked for now, written to a file by a worker.

Revision ID: 4d8a2f6c9e31
Revises: 2b7f4d9a6e18
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "4d8a2f6c9e31"
down_revision: str | None = "2b7f4d9a6e18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(length=4), nullable=False),
        sa.Column("date_from", sa.Date(), nullable=True),
        sa.Column("date_to", sa.Date(), nullable=True),
        sa.Column("only_unexported", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", spendtrackr.core.db.UTCDateTime(), nullable=True),
        sa.Column("finished_at", spendtrackr.core.db.UTCDateTime(), nullable=True),
        sa.Column("storage_key", sa.String(length=200), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_export_company_id_company"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_export"),
    )
    op.create_index("ix_export_company_created", "export", ["company_id", "created_at"])
    op.create_index("ix_export_queue", "export", ["status", "started_at"])


def downgrade() -> None:
    op.drop_table("export")
