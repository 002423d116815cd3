"""The database engine: SQLite by default, PostgreSQL when CYTOKINE_CDS_DATABASE_URL says so.

SQLite runs in WAL mode with synchronous=NORMAL. A commit then appends to the WAL file with
write() before it returns, so the data is in the operating system's page cache: a process killed
with SIGKILL (or an OOM kill) loses nothing it committed. Only an operating-system crash or power
loss can drop the last commits (NORMAL skips the fsync per commit); run PostgreSQL when that
matters. Writes start with BEGIN IMMEDIATE, so concurrent writers queue on the busy timeout
instead of failing with "database is locked" when a read turns into a write.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from cds_service.store import checkpoint

SQLITE_FILE = "cytokine-cds.db"
# How long a SQLite writer waits for another process's write to finish.
SQLITE_BUSY_TIMEOUT_MS = 5000
# How long a PostgreSQL connection attempt may take before the store counts as down.
POSTGRES_CONNECT_TIMEOUT_S = 2
# Connections with this execution option start a read (deferred) transaction on SQLite.
READ_ONLY = "cytokine_read_only"


def store_url(configured: str | None, data_dir: Path) -> URL:
    """The configured URL, with `postgresql://` mapped to the psycopg 3 driver; without one, the
    SQLite file in `data_dir`."""
    if configured is None:
        return URL.create("sqlite+pysqlite", database=str(data_dir / SQLITE_FILE))
    url = make_url(configured)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_store_engine(url: URL) -> Engine:
    options: dict[str, Any] = {
        # Error messages never carry the values of a statement (evidence, comments).
        "hide_parameters": True,
        "json_serializer": lambda value: orjson.dumps(value).decode(),
        "json_deserializer": orjson.loads,
    }
    if url.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        engine = create_engine(url, **options)
        _configure_sqlite(engine)
    elif url.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        # pre_ping: a replica outlives PostgreSQL restarts without failing a request on a dead
        # pooled connection; pool_timeout bounds the wait when every connection is busy.
        engine = create_engine(
            url, connect_args=connect_args, pool_pre_ping=True, pool_timeout=2, **options
        )
    else:
        raise ValueError(
            f"CYTOKINE_CDS_DATABASE_URL: unsupported database '{url.get_backend_name()}' "
            "(use sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB)"
        )
    _FORKED_ENGINES.add(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the sqlite3 module, decide how transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        # WAL checkpoints in a background thread, not in commits.
        checkpoint.configure_connection(dbapi_connection)
        checkpoint.ensure_checkpointer(engine)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


# gunicorn forks workers after the app (and its engine) is built in the master: a child must
# never reuse the parent's pooled connections, so each child starts with an empty pool.
_FORKED_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _reset_pools_in_child() -> None:
    for engine in list(_FORKED_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_reset_pools_in_child)
