"""Alembic environment: migrations always run on a connection the store hands in (migrate.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from cds_service.store.schema import metadata

# Any constant: replicas starting together take this lock, so one of them migrates at a time.
_MIGRATION_LOCK_ID = 0x6379746F

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    context.run_migrations()
