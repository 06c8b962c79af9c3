"""Alembic environment: the URL comes from our settings, the schema from our models."""

from __future__ import annotations

from alembic import context

from smartprotect import models
from smartprotect.config import get_settings
from smartprotect.db import make_engine

config = context.config
target_metadata = models.Base.metadata

# PostgreSQL: never wait on a lock for long during a deploy.
POSTGRES_LOCK_TIMEOUT_MS = 4000
POSTGRES_STATEMENT_TIMEOUT_MS = 60000


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or get_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(get_settings())
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite" and not connection.in_transaction()
    if sqlite:
        # Batch mode rebuilds a table by dropping it, and with foreign keys on, dropping a
        # table deletes the rows referring to it by ON DELETE CASCADE. The pragma works only
        # outside a transaction, so it is set on the driver's connection before any begins.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        _migrate(connection)
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        connection.rollback()
        if broken:
            raise RuntimeError(f"the migrations left rows referring to none: {broken[:10]}")


def _migrate(connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET lock_timeout = {POSTGRES_LOCK_TIMEOUT_MS}")
        connection.exec_driver_sql(f"SET statement_timeout = {POSTGRES_STATEMENT_TIMEOUT_MS}")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
