"""The default JWT replay cache: a table in the audit store's database.

Every worker of a server opens the same database (and every replica, when they share a
PostgreSQL server), so a token accepted by one is refused by all. One statement decides, and the
database's unique key makes it atomic between processes:

    INSERT (key, expires_at) ON CONFLICT (key) DO UPDATE SET expires_at = new
        WHERE old expires_at <= now   RETURNING key

A row comes back when the key is new, or when its earlier use has expired (the issuer reused a
`jti` after its first token died): that is a first use. No row: a replay. Expired rows are
deleted every few minutes by whichever process notices first.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from cds_service.auth.replay import ReplayCacheUnavailable
from cds_service.store.driver_sql import DriverStatement, driver_errors, driver_transaction
from cds_service.store.schema import used_tokens

PURGE_INTERVAL_SECONDS = 300.0


def token_key(issuer: str, jti: str) -> str:
    return hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()


class StoreReplayCache:
    """(issuer, jti) accepted once, across the processes that share the store's database."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._next_purge = 0.0
        dialect: Any = postgresql if engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(used_tokens).values(
            token_key=bindparam("key"), expires_at=bindparam("expires_at")
        )
        claim = statement.on_conflict_do_update(
            index_elements=[used_tokens.c.token_key],
            set_={"expires_at": statement.excluded.expires_at},
            where=used_tokens.c.expires_at <= bindparam("now"),
        ).returning(used_tokens.c.token_key)
        # On the driver's cursor (see driver_sql.py): one claim per authenticated call.
        self._claim = DriverStatement(claim, engine.dialect)
        self._purge = DriverStatement(
            delete(used_tokens).where(used_tokens.c.expires_at <= bindparam("now")),
            engine.dialect,
        )
        self._errors = driver_errors(engine.dialect)

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        now = self._clock()
        try:
            with driver_transaction(self._engine) as cursor:
                claimed = self._claim.run(
                    cursor,
                    {
                        "key": token_key(issuer, jti),
                        "expires_at": math.ceil(expires_at),
                        "now": math.floor(now),
                    },
                )
                if now >= self._next_purge:
                    self._next_purge = now + PURGE_INTERVAL_SECONDS
                    self._purge.run(cursor, {"now": now})
        except self._errors as exc:
            raise ReplayCacheUnavailable(type(getattr(exc, "orig", None) or exc).__name__) from None
        return bool(claimed)
