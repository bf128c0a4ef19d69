"""Text on MySQL and MariaDB: every table in utf8mb4, and identifiers compared byte for byte.

Tables took the database's default character set. Where that is not utf8mb4 (latin1 is
MariaDB's own default before 11.6, and older MySQL's), a company called `Café 東京` or an emoji
in a description failed the INSERT with a 500. The database's default and every table not yet
in utf8mb4 are converted; tables already in utf8mb4 keep their collation (nothing is rebuilt).

Columns holding identifiers that others make up (`Idempotency-Key`, the card network's
`authorization_id`, directory event ids) compared by that collation, case-insensitive by default
(accent-insensitive too on MySQL 8): `auth-X1` after `AUTH-x1` was answered as a retry of the
first authorization, so the second purchase was neither recorded nor counted against the card's
limits. They are `utf8mb4_bin` now, byte for byte, as on SQLite.

Downgrade gives the three columns their table's collation back (it fails if two of their values
now differ only in case, as it should); the character set conversion is kept.

Revision ID: 7e21c4a9b0d3
Revises: 3f9b6c2d8e14
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "7e21c4a9b0d3"
down_revision: str | None = "3f9b6c2d8e14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, length)
IDENTIFIERS = (
    ("idempotency_record", "key", 255),
    ("card_authorization", "authorization_id", 100),
    ("processed_event", "event_id", 200),
)


def _is_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    if not _is_mysql():
        return  # SQLite stores UTF-8 and compares bytes already
    bind = op.get_bind()
    schema = bind.exec_driver_sql("SELECT DATABASE()").scalar_one()
    charset = bind.execute(
        sa.text(
            "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA"
            " WHERE SCHEMA_NAME = :schema"
        ),
        {"schema": schema},
    ).scalar_one()
    if charset != "utf8mb4":
        op.execute(f"ALTER DATABASE `{schema}` CHARACTER SET utf8mb4")
    tables = bind.execute(
        sa.text(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :schema"
            " AND TABLE_TYPE = 'BASE TABLE' AND TABLE_COLLATION NOT LIKE 'utf8mb4\\_%'"
        ),
        {"schema": schema},
    ).scalars()
    for table in list(tables):
        op.execute(f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4")
    for table, column, length in IDENTIFIERS:
        op.alter_column(
            table,
            column,
            type_=mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"),
            existing_type=sa.String(length),
            existing_nullable=False,
        )


def downgrade() -> None:
    if not _is_mysql():
        return
    for table, column, length in IDENTIFIERS:
        op.alter_column(
            table,
            column,
            type_=sa.String(length),
            existing_type=mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"),
            existing_nullable=False,
        )
