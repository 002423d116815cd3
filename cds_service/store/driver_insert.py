"""INSERTs compiled once by SQLAlchemy and run on the database driver's own cursor.

Every hook call with cards writes its audit row. Through `Connection.execute` that write took
0.25 ms on SQLite (median; PostgreSQL 0.90 ms), much of it SQLAlchemy's per-statement work
(statement cache lookup, parameter processing, result objects) rather than the database's; on
the driver's cursor the same rows take 0.14 ms (PostgreSQL 0.69 ms; bench/audit_write.py,
which includes building the record). The SQL text and each column's bind processor
(JSON through the engine's serializer, UTC datetimes, the dialect's own adaptations) still come
from SQLAlchemy, so the rows stored are the ones `Connection.execute` would store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert


class DriverInsert:
    """One INSERT (optionally with RETURNING) for a fixed set of columns, in one dialect."""

    def __init__(self, statement: Insert, columns: Sequence[str], dialect: Dialect) -> None:
        table = statement.table
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        self.sql = str(compiled)
        # qmark/numeric drivers (sqlite3) take a tuple in the compiled order, pyformat ones
        # (psycopg) a mapping by name.
        self._order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        self._processors = {
            name: processor
            for name in columns
            if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        }

    def parameters(self, row: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        processed = {
            name: (processor(row[name]) if (processor := self._processors.get(name)) else row[name])
            for name in row
        }
        if self._order is None:
            return processed
        return tuple(processed[name] for name in self._order)

    def run(self, cursor: Any, row: Mapping[str, Any]) -> list[Any]:
        """Insert one row; the rows its RETURNING clause gives (empty without one)."""
        cursor.execute(self.sql, self.parameters(row))
        return list(cursor.fetchall()) if cursor.description is not None else []


@contextmanager
def driver_transaction(engine: Engine) -> Iterator[Any]:
    """A cursor in one write transaction on a pooled connection: committed when the block
    ends, rolled back (and the connection dropped from the pool) when it raises."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        if engine.dialect.name == "sqlite":
            # The store's SQLite connections leave transactions to the caller (see database.py):
            # IMMEDIATE takes the write lock first, so writers queue instead of failing.
            cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
            connection.commit()
        except BaseException:
            with suppress(Exception):  # the connection is dropped just below either way
                connection.rollback()
            connection.invalidate()  # its state is unknown: the pool opens a fresh one
            raise
        finally:
            cursor.close()
    finally:
        connection.close()
