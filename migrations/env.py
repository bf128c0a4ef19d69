"""Alembic environment: the same Settings and engine setup as the app."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from spendtrackr import models
from spendtrackr.core.config import get_settings
from spendtrackr.core.db import build_engine

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = models.Base.metadata


def run_migrations_online() -> None:
    settings = get_settings()
    url = config.attributes.get("database_url") or settings.database_url
    engine = build_engine(settings.model_copy(update={"database_url": url, "threadpool_size": 1}))
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
