"""The approvals inbox reads each way a step can be someone's through an index in its order.

Revision ID: 3f6b9d2e8a47
Revises: 7e1c9a3f5d28
Create Date: 2026-12-14 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3f6b9d2e8a47"
down_revision: str | None = "7e1c9a3f5d28"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "approval_step"
# Each gains `created_at` after these.
_CHANGED = {
    "ix_approval_step_company_status_approver": ["company_id", "status", "approver_id"],
    "ix_approval_step_company_status_role": ["company_id", "status", "approver_role"],
}
_ADDED = {
    "ix_approval_step_company_status_created": ["company_id", "status", "created_at"],
    "ix_approval_step_company_status_escalated_to": [
        "company_id",
        "status",
        "escalated_to_id",
        "created_at",
    ],
    "ix_approval_step_company_status_escalated_role": [
        "company_id",
        "status",
        "escalated_to_role",
        "created_at",
    ],
}


def upgrade() -> None:
    for name, columns in _CHANGED.items():
        op.drop_index(name, table_name=_TABLE)
        op.create_index(name, _TABLE, [*columns, "created_at"])
    for name, columns in _ADDED.items():
        op.create_index(name, _TABLE, columns)


def downgrade() -> None:
    for name in _ADDED:
        op.drop_index(name, table_name=_TABLE)
    for name, columns in _CHANGED.items():
        op.drop_index(name, table_name=_TABLE)
        op.create_index(name, _TABLE, columns)
