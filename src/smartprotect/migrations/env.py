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
    if connection.dialect.name != "sqlite":
        _migrate(connection)
        return
    # Batch mode rebuilds a table by dropping it, and with foreign keys on, dropping a table
    # deletes the rows referring to it by ON DELETE CASCADE: they are off meanwhile, and
    # checked afterwards. The pragma is ignored inside a transaction, so it is set on the
    # driver's connection before any begins.
    if connection.in_transaction():
        raise RuntimeError("SQLite migrations need a connection with no transaction begun")
    driver = connection.connection.driver_connection
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        _migrate(connection)
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        # A failed migration's transaction is ended first, or the pragma would be ignored
        # and the connection go back to the pool with foreign keys off.
        connection.rollback()
        driver.execute("PRAGMA foreign_keys=ON")
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
