"""Accounts per company, departments, tax and period close: the company's own ledger accounts and
the day its books are closed through; a GL code on teams (booked as the department of their
spends' lines); tax amount and rate on spends; the department on ledger lines.

Revision ID: 9c4f1a7e3b25
Revises: 7b3e5d9a2c14
Create Date: 2026-12-08 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c4f1a7e3b25"
down_revision: str | None = "7b3e5d9a2c14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("company") as batch:
        batch.add_column(sa.Column("ledger_accounts", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("books_closed_through", sa.Date(), nullable=True))
    with op.batch_alter_table("team") as batch:
        batch.add_column(sa.Column("gl_code", sa.String(length=32), nullable=True))
    with op.batch_alter_table("spend") as batch:
        batch.add_column(sa.Column("tax_amount", sa.Numeric(precision=18, scale=4), nullable=True))
        batch.add_column(sa.Column("tax_rate", sa.Numeric(precision=7, scale=4), nullable=True))
    with op.batch_alter_table("ledger_line") as batch:
        batch.add_column(
            sa.Column("department", sa.String(length=32), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_line") as batch:
        batch.drop_column("department")
    with op.batch_alter_table("spend") as batch:
        batch.drop_column("tax_rate")
        batch.drop_column("tax_amount")
    with op.batch_alter_table("team") as batch:
        batch.drop_column("gl_code")
    with op.batch_alter_table("company") as batch:
        batch.drop_column("books_closed_through")
        batch.drop_column("ledger_accounts")
