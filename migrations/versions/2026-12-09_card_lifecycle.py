"""Card transactions after the authorization: captures, reversals and refunds (`card_transaction`);
what each authorization captured, reversed and refunded and when its hold closed; the merchant's
country and category code; merchant-code controls on cards; a spend's merchant code and, for a
refund (a credit), the purchase it gives money back for.

Authorizations approved before this revision counted their whole amount against the limits as if
captured: they are marked captured in full with their hold closed, so the limits count exactly
what they counted before.

Revision ID: 2d8b6f4e1a93
Revises: 9c4f1a7e3b25
Create Date: 2026-12-09 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spendtrackr.core.db

revision: str = "2d8b6f4e1a93"
down_revision: str | None = "9c4f1a7e3b25"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(precision=18, scale=4)


def upgrade() -> None:
    with op.batch_alter_table("card_authorization") as batch:
        batch.add_column(sa.Column("merchant_country", sa.String(length=2), nullable=True))
        batch.add_column(sa.Column("mcc", sa.String(length=4), nullable=True))
        for name in ("captured", "reversed", "refunded", "captured_amount"):
            batch.add_column(sa.Column(name, MONEY, nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("hold_closed_at", spendtrackr.core.db.UTCDateTime(), nullable=True)
        )
        batch.create_index("ix_card_authorization_open_holds", ["hold_closed_at", "created_at"])
    auth = sa.table(
        "card_authorization",
        sa.column("approved", sa.Boolean()),
        sa.column("amount", MONEY),
        sa.column("billed_amount", MONEY),
        sa.column("captured", MONEY),
        sa.column("captured_amount", MONEY),
        sa.column("hold_closed_at", spendtrackr.core.db.UTCDateTime()),
        sa.column("created_at", spendtrackr.core.db.UTCDateTime()),
    )
    op.execute(
        auth.update()
        .where(auth.c.approved.is_(True))
        .values(captured=auth.c.billed_amount, captured_amount=auth.c.amount)
    )
    op.execute(auth.update().values(hold_closed_at=auth.c.created_at))
    with op.batch_alter_table("card") as batch:
        batch.add_column(sa.Column("allowed_mccs", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("blocked_mccs", sa.JSON(), nullable=True))
    card = sa.table(
        "card", sa.column("allowed_mccs", sa.JSON()), sa.column("blocked_mccs", sa.JSON())
    )
    op.execute(card.update().values(allowed_mccs=[], blocked_mccs=[]))
    with op.batch_alter_table("card") as batch:
        batch.alter_column("allowed_mccs", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("blocked_mccs", existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table("spend") as batch:
        batch.add_column(sa.Column("mcc", sa.String(length=4), nullable=True))
        batch.add_column(sa.Column("refund_of", sa.Uuid(), nullable=True))
        batch.create_foreign_key("fk_spend_refund_of_spend", "spend", ["refund_of"], ["id"])
    op.create_table(
        "card_transaction",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column(
            "network_id",
            sa.String(length=100).with_variant(
                sa.dialects.mysql.VARCHAR(100, charset="utf8mb4", collation="utf8mb4_bin"),
                "mysql",
                "mariadb",
            ),
            nullable=False,
        ),
        sa.Column("authorization_ref", sa.Uuid(), nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("billed_amount", MONEY, nullable=False),
        sa.Column("billed_currency", sa.String(length=3), nullable=False),
        sa.Column("merchant_name", sa.String(length=200), nullable=False),
        sa.Column("merchant_country", sa.String(length=2), nullable=True),
        sa.Column("mcc", sa.String(length=4), nullable=True),
        sa.Column("spend_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", spendtrackr.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name="fk_card_transaction_company_id_company"
        ),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"], name="fk_card_transaction_card_id_card"),
        sa.ForeignKeyConstraint(
            ["authorization_ref"],
            ["card_authorization.id"],
            name="fk_card_transaction_authorization_ref_card_authorization",
        ),
        sa.ForeignKeyConstraint(
            ["spend_id"], ["spend.id"], name="fk_card_transaction_spend_id_spend"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_card_transaction"),
        sa.UniqueConstraint(
            "company_id",
            "kind",
            "network_id",
            name="uq_card_transaction_company_id_kind_network_id",
        ),
    )
    op.create_index(
        "ix_card_transaction_company_created",
        "card_transaction",
        ["company_id", "created_at", "id"],
    )
    op.create_index(
        "ix_card_transaction_card_created", "card_transaction", ["card_id", "created_at"]
    )
    op.create_index(
        "ix_card_transaction_authorization_ref", "card_transaction", ["authorization_ref"]
    )


def downgrade() -> None:
    op.drop_table("card_transaction")
    with op.batch_alter_table("spend") as batch:
        batch.drop_constraint("fk_spend_refund_of_spend", type_="foreignkey")
        batch.drop_column("refund_of")
        batch.drop_column("mcc")
    with op.batch_alter_table("card") as batch:
        batch.drop_column("blocked_mccs")
        batch.drop_column("allowed_mccs")
    with op.batch_alter_table("card_authorization") as batch:
        batch.drop_index("ix_card_authorization_open_holds")
        batch.drop_column("hold_closed_at")
        for name in ("captured_amount", "refunded", "reversed", "captured"):
            batch.drop_column(name)
        batch.drop_column("mcc")
        batch.drop_column("merchant_country")
