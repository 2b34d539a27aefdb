"""Alembic environment: runs against the connection handed in by ``layers.migrate``."""

from __future__ import annotations

from alembic import context

from layers.models import Base


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through layers.migrate (pingan db migrate)")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_schemas=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
