"""Alembic environment: runs against the engine the Store hands over (or the URL set)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import ArgumentError

from assistant.store import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed over by Store.migrate (holding its lock)
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise ArgumentError("No database: neither a connection nor sqlalchemy.url was given")
    with create_engine(url).connect() as connection:
        _run(connection)


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
