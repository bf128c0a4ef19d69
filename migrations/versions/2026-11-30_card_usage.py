"""Card usage: each card's approved totals per limit window, kept with every approval.

A card authorization added up the approved authorizations of each limited window, under the
card's lock; on a busy card that was a thousand rows read for every purchase (the bench's hot
card: about a millisecond of the lock's hold each time). `card_usage` holds the running totals
instead. No backfill: a card without a row is added up from its authorizations, as before, until
its next approval writes the row (`spendtrackr.apps.cards.service.LimitUsage`).

Revision ID: 3f9b6c2d8e14
Revises: a7c35e90d2f1
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "3f9b6c2d8e14"
down_revision: str | None = "a7c35e90d2f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    windows = []
    for interval in ("daily", "weekly", "monthly", "yearly"):
        windows += [
            sa.Column(f"{interval}_start", spendtrackr.core.db.UTCDateTime(), nullable=False),
            sa.Column(f"{interval}_used", spendtrackr.core.db.ExactTotal(), nullable=False),
        ]
    op.create_table(
        "card_usage",
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        *windows,
        sa.Column("all_time_used", spendtrackr.core.db.ExactTotal(), nullable=False),
        sa.Column("updated_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"], name=op.f("fk_card_usage_card_id_card")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name=op.f("fk_card_usage_company_id_company")
        ),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_card_usage")),
    )


def downgrade() -> None:
    op.drop_table("card_usage")
