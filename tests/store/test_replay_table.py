"""The default JWT replay cache, a table in the audit store's database, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cds_service.auth.replay import ReplayCacheUnavailable
from cds_service.composition import open_audit_store
from cds_service.settings import Settings
from cds_service.store import AuditStore
from cds_service.store.database import create_store_engine, store_url
from cds_service.store.replay import PURGE_INTERVAL_SECONDS, StoreReplayCache
from cds_service.store.schema import used_tokens
from tests.servers import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def rows(store: AuditStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(used_tokens)) or 0)


def test_a_jti_is_accepted_once_per_issuer_until_it_expires(store: AuditStore) -> None:
    clock = Clock()
    cache = StoreReplayCache(store.engine, clock)
    assert cache.first_use("iss-a", "j1", clock.now + 360)
    assert not cache.first_use("iss-a", "j1", clock.now + 360)
    assert cache.first_use("iss-b", "j1", clock.now + 360), "per issuer"
    assert cache.first_use("iss-a", "j2", clock.now + 60)
    assert rows(store) == 3
    with store.engine.connect() as connection:
        keys = list(connection.scalars(select(used_tokens.c.token_key)))
    assert all("j1" not in key and "iss-a" not in key for key in keys), "stored hashed"
    clock.now += 61
    # j2's first token has expired (it is refused as expired before this cache is asked): the
    # issuer may reuse the jti on a new token.
    assert cache.first_use("iss-a", "j2", clock.now + 60)
    assert not cache.first_use("iss-a", "j2", clock.now + 60)
    assert not cache.first_use("iss-a", "j1", clock.now + 360)


def test_expired_rows_are_purged_periodically(store: AuditStore) -> None:
    clock = Clock()
    cache = StoreReplayCache(store.engine, clock)
    for n in range(5):
        assert cache.first_use("iss", f"short-{n}", clock.now + 60)
    assert cache.first_use("iss", "long", clock.now + 3600)
    clock.now += 120
    assert cache.first_use("iss", "another", clock.now + 60)
    assert rows(store) == 7, "not purged before the interval has passed"
    clock.now += PURGE_INTERVAL_SECONDS
    assert cache.first_use("iss", "later", clock.now + 60)
    assert rows(store) == 2  # "long" and "later": the others had expired


def test_concurrent_uses_of_one_jti_accept_exactly_one(store_settings: Settings) -> None:
    # Separate engines stand for separate worker processes (their own connections).
    assert store_settings.database_url is not None
    url = store_url(store_settings.database_url.get_secret_value(), store_settings.data_dir)
    caches = [StoreReplayCache(create_store_engine(url)) for _ in range(8)]
    open_audit_store(store_settings).prepare(auto_upgrade=True)
    for round_ in range(5):
        jti = str(uuid.uuid4())
        start = threading.Barrier(len(caches))

        def use(cache: StoreReplayCache, jti: str = jti, start: threading.Barrier = start) -> bool:
            start.wait()
            return cache.first_use("iss", jti, 2_000_000_000)

        with ThreadPoolExecutor(len(caches)) as pool:
            accepted = list(pool.map(use, caches))
        assert accepted.count(True) == 1, f"round {round_}: {accepted}"


def test_a_database_that_cannot_be_reached_says_so() -> None:
    url = f"postgresql://u:p@127.0.0.1:{free_port()}/db"
    engine = create_store_engine(store_url(url, Path("unused")))
    with pytest.raises(ReplayCacheUnavailable):
        StoreReplayCache(engine).first_use("iss", "jti", 2_000_000_000)
