"""Single sign-on through a company's OpenID Connect provider: its configuration (client secret
sealed) and the one-time logins of the authorization code flow.

Revision ID: 3b9e7f1c5d28
Revises: 8a4d2c6e9b17
Create Date: 2026-12-10 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "3b9e7f1c5d28"
down_revision: str | None = "8a4d2c6e9b17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sso_config",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret_enc", sa.String(length=1000), nullable=False),
        sa.Column("allowed_domains", sa.JSON(), nullable=False),
        sa.Column("default_role", sa.String(length=16), nullable=False),
        sa.Column("sso_required", sa.Boolean(), nullable=False),
        sa.Column("create_users", sa.Boolean(), nullable=False),
        sa.Column("frontend_url", sa.String(length=500), nullable=True),
        sa.Column("updated_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_sso_config_company_id_company"
        ),
        sa.PrimaryKeyConstraint("company_id", name="pk_sso_config"),
    )
    op.create_table(
        "sso_login",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.Column("used_at", spendtrackr.core.db.UTCDateTime(), nullable=True),
        sa.Column("exchange_hash", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("exchanged_at", spendtrackr.core.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_sso_login_company_id_company"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_sso_login_user_id_user"),
        sa.PrimaryKeyConstraint("state_hash", name="pk_sso_login"),
        sa.UniqueConstraint("exchange_hash", name="uq_sso_login_exchange_hash"),
    )


def downgrade() -> None:
    op.drop_table("sso_login")
    op.drop_table("sso_config")
