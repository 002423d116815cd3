"""What the JWT replay check costs per call: first_use() timed on each cache, side by side.

- in-process: a dict in one process (the baseline; not shared, so no server uses it)
- sqlite: the default, a table in the audit store's SQLite file (WAL), shared by every worker
- postgresql: the same table on a throwaway local PostgreSQL server (started like the tests do)
- redis: CYTOKINE_CDS_REDIS_URL's cache on a local redis-server, when one is installed

Each check is one new (issuer, jti), i.e. one accepted token: the path every call takes. The
SQLite cache is measured once more with four processes checking at the same time on one file
(a server's four workers): they queue on its write lock.

    python bench/replay_cache.py [--checks 5000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cds_service.auth.replay import InProcessReplayCache, RedisReplayCache, connect_redis
from cds_service.composition import open_audit_store
from cds_service.settings import Settings
from cds_service.store.replay import StoreReplayCache

ISSUER = "https://ehr.example.org"
WARM_UP = 200


def timings_of(first_use: Callable[[str, str, float], bool], checks: int) -> list[float]:
    """µs per first_use() of `checks` new jtis, after a warm-up."""
    expires = time.time() + 600
    jtis = [str(uuid.uuid4()) for _ in range(checks + WARM_UP)]
    for jti in jtis[:WARM_UP]:
        assert first_use(ISSUER, jti, expires)
    timings = []
    for jti in jtis[WARM_UP:]:
        started = time.perf_counter()
        accepted = first_use(ISSUER, jti, expires)
        timings.append((time.perf_counter() - started) * 1e6)
        assert accepted
    assert not first_use(ISSUER, jtis[-1], expires), "a replay must be refused"
    return timings


def report(label: str, timings: list[float], checks: int) -> None:
    timings = sorted(timings)
    print(
        f"{label:<14} {checks} checks: mean {statistics.fmean(timings):8.1f} µs, "
        f"p50 {timings[len(timings) // 2]:8.1f} µs, p99 {timings[int(len(timings) * 0.99)]:8.1f} µs"
    )


def measure(label: str, first_use: Callable[[str, str, float], bool], checks: int) -> None:
    report(label, timings_of(first_use, checks), checks)


def _worker(args: tuple[str, int]) -> list[float]:
    database_url, checks = args
    from sqlalchemy.engine import make_url

    from cds_service.store.database import create_store_engine

    return timings_of(
        StoreReplayCache(create_store_engine(make_url(database_url))).first_use, checks
    )


def measure_concurrent(label: str, database_url: str, checks: int, processes: int) -> None:
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_worker, [(database_url, checks // processes)] * processes)
    report(label, [t for result in results for t in result], checks)


def store_cache(database_url: str, data_dir: Path) -> StoreReplayCache:
    settings = Settings(auth="off", data_dir=data_dir, database_url=database_url)  # type: ignore[arg-type]
    store = open_audit_store(settings, patient_key=False)
    store.prepare(auto_upgrade=True)
    return StoreReplayCache(store.engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp, ExitStack() as stack:
        data = Path(temp)
        measure("in-process", InProcessReplayCache().first_use, args.checks)
        sqlite_url = f"sqlite:///{data / 'bench.db'}"
        measure("sqlite", store_cache(sqlite_url, data).first_use, args.checks)
        measure_concurrent("sqlite, 4 proc", sqlite_url, args.checks, 4)
        from tests.postgres import fresh_database, postgres_server

        admin = stack.enter_context(postgres_server())
        url = stack.enter_context(fresh_database(admin))
        measure("postgresql", store_cache(url, data).first_use, args.checks)
        from tests.auth.conftest import redis_server, redis_server_binary

        if redis_server_binary() is None:
            print("redis          skipped: no redis-server binary")
            return
        redis_url = stack.enter_context(redis_server(data))
        measure("redis", RedisReplayCache(connect_redis(redis_url)).first_use, args.checks)


if __name__ == "__main__":
    main()
