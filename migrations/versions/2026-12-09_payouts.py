"""Reimbursement payouts: employees' bank accounts (numbers sealed), payout batches and their
lines, the company's paying accounts, and on each spend the payout line paying it.

Revision ID: 5e1c7a9d3f42
Revises: 2d8b6f4e1a93
Create Date: 2026-12-09 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "5e1c7a9d3f42"
down_revision: str | None = "2d8b6f4e1a93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(precision=18, scale=4)


def _entity() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "bank_account",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("holder_name", sa.String(length=140), nullable=False),
        sa.Column("number_enc", sa.String(length=500), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column("routing_number", sa.String(length=9), nullable=True),
        sa.Column("account_type", sa.String(length=8), nullable=True),
        *_entity(),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_bank_account_company_id_company"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_bank_account_user_id_user"),
        sa.PrimaryKeyConstraint("id", name="pk_bank_account"),
        sa.UniqueConstraint("user_id", name="uq_bank_account_user_id"),
    )
    op.create_table(
        "payout",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("execution_date", sa.Date(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("debtor", sa.JSON(), nullable=False),
        sa.Column("paid_at", spendtrackr.core.db.UTCDateTime(), nullable=True),
        *_entity(),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_payout_company_id_company"
        ),
        sa.ForeignKeyConstraint(["created_by"], ["user.id"], name="fk_payout_created_by_user"),
        sa.PrimaryKeyConstraint("id", name="pk_payout"),
    )
    op.create_index("ix_payout_company_created", "payout", ["company_id", "created_at"])
    op.create_table(
        "payout_line",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("payout_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("bank_account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("spend_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("return_reason", sa.String(length=200), nullable=True),
        *_entity(),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_payout_line_company_id_company"
        ),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["payout.id"], name="fk_payout_line_payout_id_payout"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_payout_line_user_id_user"),
        sa.PrimaryKeyConstraint("id", name="pk_payout_line"),
    )
    op.create_index("ix_payout_line_payout", "payout_line", ["payout_id"])
    with op.batch_alter_table("spend") as batch:
        batch.add_column(sa.Column("payout_line_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            "fk_spend_payout_line_id_payout_line", "payout_line", ["payout_line_id"], ["id"]
        )
    with op.batch_alter_table("company") as batch:
        batch.add_column(sa.Column("payout_accounts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("company") as batch:
        batch.drop_column("payout_accounts")
    with op.batch_alter_table("spend") as batch:
        batch.drop_constraint("fk_spend_payout_line_id_payout_line", type_="foreignkey")
        batch.drop_column("payout_line_id")
    op.drop_table("payout_line")
    op.drop_table("payout")
    op.drop_table("bank_account")
