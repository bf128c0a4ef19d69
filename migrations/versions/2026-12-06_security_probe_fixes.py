"""What the security probe's fixes keep: emails unique per company, a directory secret of its own,
company-wide maximum card limits.

- `user.email` was unique across all companies: one tenant's user blocked that address in every
  other, and the 409 told a stranger it had an account somewhere. It is now unique within a
  company among users not deleted (`email_claim`, null once deleted), so a person can belong to
  several companies and a deleted user's email can be given again. Existing rows keep their
  email claimed (a deactivated user of before cannot be told from a deleted one: deleting it now
  frees the address).
- `company.directory_secret_hash` (and its rotation overlap): directory sync no longer accepts the
  card network's secret. Existing companies have none until an admin rotates one.
- `company.directory_may_grant_admin` (off) and `company.max_card_limits` (none).

Revision ID: 9b3c1e7d5a20
Revises: 5d2e8f1a9c47
Create Date: 2026-12-06 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "9b3c1e7d5a20"
down_revision: str | None = "5d2e8f1a9c47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("email_claim", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("deleted_at", spendtrackr.core.db.UTCDateTime(), nullable=True))
    users = sa.table("user", sa.column("email"), sa.column("email_claim"))
    op.execute(users.update().values(email_claim=users.c.email))
    with op.batch_alter_table("user") as batch:
        batch.drop_constraint("uq_user_email", type_="unique")
        batch.create_unique_constraint(
            "uq_user_company_id_email_claim", ["company_id", "email_claim"]
        )
        batch.create_index("ix_user_email", ["email"])

    with op.batch_alter_table("company") as batch:
        batch.add_column(sa.Column("max_card_limits", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column(
                "directory_may_grant_admin",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch.add_column(sa.Column("directory_secret_hash", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("previous_directory_secret_hash", sa.String(length=64), nullable=True)
        )
        batch.add_column(
            sa.Column(
                "previous_directory_secret_expires_at",
                spendtrackr.core.db.UTCDateTime(),
                nullable=True,
            )
        )
        batch.create_unique_constraint(
            "uq_company_directory_secret_hash", ["directory_secret_hash"]
        )
        batch.create_index(
            "ix_company_previous_directory_secret_hash", ["previous_directory_secret_hash"]
        )
    # (MySQL gives a JSON column no literal default: fill it, then require it.)
    companies = sa.table("company", sa.column("max_card_limits", sa.JSON()))
    op.execute(companies.update().values(max_card_limits=[]))
    with op.batch_alter_table("company") as batch:
        batch.alter_column("max_card_limits", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("company") as batch:
        batch.drop_index("ix_company_previous_directory_secret_hash")
        batch.drop_constraint("uq_company_directory_secret_hash", type_="unique")
        batch.drop_column("previous_directory_secret_expires_at")
        batch.drop_column("previous_directory_secret_hash")
        batch.drop_column("directory_secret_hash")
        batch.drop_column("directory_may_grant_admin")
        batch.drop_column("max_card_limits")
    with op.batch_alter_table("user") as batch:
        batch.drop_index("ix_user_email")
        batch.drop_constraint("uq_user_company_id_email_claim", type_="unique")
        # Fails if one email now has users in two companies: they must be told apart first.
        batch.create_unique_constraint("uq_user_email", ["email"])
        batch.drop_column("deleted_at")
        batch.drop_column("email_claim")
