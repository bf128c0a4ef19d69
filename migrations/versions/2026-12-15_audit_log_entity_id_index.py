"""An index of the audit log by entity id alone, for one entity's history without its type.

Revision ID: 8c4e1a7b3d92
Revises: 3f6b9d2e8a47
Create Date: 2026-12-15 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8c4e1a7b3d92"
down_revision: str | None = "3f6b9d2e8a47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_log_company_entity_id", "audit_log", ["company_id", "entity_id", "seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_company_entity_id", table_name="audit_log")
