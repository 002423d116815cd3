"""Statements compiled once by SQLAlchemy and run on the database driver's own cursor.

Every hook call with cards writes its audit row, and every authenticated call claims its JWT's
`jti`. Through `Connection.execute` the audit write took 0.25 ms on SQLite (median; PostgreSQL
0.90 ms) and the claim 0.09 ms, much of it SQLAlchemy's per-statement work (statement cache
lookup, parameter processing, result objects) rather than the database's; on the driver's
cursor they take 0.14 ms (PostgreSQL 0.69 ms; bench/audit_write.py, which includes building
the record) and 0.03 ms. The SQL text and each parameter's bind processor (JSON through the
engine's serializer, UTC datetimes, the dialect's own adaptations) still come from SQLAlchemy,
so the rows stored are the ones `Connection.execute` would store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, cast

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class DriverStatement:
    """One statement (optionally with RETURNING) in one dialect. An INSERT without values of
    its own is compiled for `columns`; otherwise the statement's bind parameters are filled."""

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, columns: Sequence[str] | None = None
    ) -> None:
        compiled = cast(
            SQLCompiler,
            statement.compile(
                dialect=dialect, column_keys=list(columns) if columns is not None else None
            ),
        )
        self.sql = str(compiled)
        # qmark/numeric drivers (sqlite3) take a tuple in the compiled order, pyformat ones
        # (psycopg) a mapping by name.
        self._order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        # Each parameter's type is its column's (SQLAlchemy coerces values and bindparams).
        self._processors = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))
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
        """Run once with these parameters; the rows it returns (empty without RETURNING)."""
        cursor.execute(self.sql, self.parameters(row))
        return list(cursor.fetchall()) if cursor.description is not None else []


def driver_errors(dialect: Dialect) -> tuple[type[BaseException], ...]:
    """What a statement on the driver's cursor may raise: SQLAlchemy's errors and the driver's."""
    dbapi = getattr(dialect, "loaded_dbapi", None)
    return (SQLAlchemyError, dbapi.Error) if dbapi is not None else (SQLAlchemyError,)


def driver_outages(dialect: Dialect) -> tuple[type[BaseException], ...]:
    """The errors of a database that cannot be reached or used right now."""
    dbapi = getattr(dialect, "loaded_dbapi", None)
    return (OperationalError, dbapi.OperationalError) if dbapi is not None else (OperationalError,)


@contextmanager
def driver_transaction(engine: Engine) -> Iterator[Any]:
    """A cursor in one write transaction on a pooled connection: committed when the block
    ends, rolled back (and the connection dropped from the pool) when it raises."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            if engine.dialect.name == "sqlite":
                # The store's SQLite connections leave transactions to the caller (database.py):
                # IMMEDIATE takes the write lock first, so writers queue instead of failing.
                cursor.execute("BEGIN IMMEDIATE")
            yield cursor
            connection.commit()
        except BaseException:
            # The cursor is closed before the connection is dropped: closing it afterwards
            # raised "closed database", which replaced the error that is worth reporting.
            with suppress(Exception):
                cursor.close()
            with suppress(Exception):
                connection.rollback()
            connection.invalidate()  # its state is unknown: the pool opens a fresh one
            raise
        cursor.close()
    finally:
        connection.close()
