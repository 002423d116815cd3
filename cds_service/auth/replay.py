"""Replay protection: each JWT `jti` is accepted once per issuer, for as long as the JWT lives.

The cache must be shared by every process that answers: gunicorn runs several workers (and a
hospital may run several replicas), and a replayed token may reach any of them. The service uses
a table in the audit store's database by default (cds_service/store/replay.py), or Redis when
CYTOKINE_CDS_REDIS_URL is set. The in-process cache below sees one process only: it is the
benchmark's baseline (bench/auth_verify.py), never what a server uses.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# Redis sits on the hot path of every call: answer or fail fast, never back off for seconds.
REDIS_TIMEOUT_SECONDS = 0.5


class ReplayCacheUnavailable(Exception):
    """The shared cache cannot be asked, so a replay cannot be ruled out."""


class ReplayCache(Protocol):
    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """Record (issuer, jti) until `expires_at` (epoch seconds); False if it was seen."""
        ...


class InProcessReplayCache:
    """A dict of seen (issuer, jti) with their expiry, purged oldest first as entries expire.

    One process only: not shared between workers, so never a server's cache.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}
        self._expiries: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        now = self._clock()
        entry = (issuer, jti)
        with self._lock:
            self._purge(now)
            if entry in self._seen:
                return False
            self._seen[entry] = expires_at
            heapq.heappush(self._expiries, (expires_at, entry))
            return True

    def __len__(self) -> int:
        return len(self._seen)

    def _purge(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, entry = heapq.heappop(self._expiries)
            self._seen.pop(entry, None)


def connect_redis(url: str) -> redis.Redis:
    """A client with short timeouts and one immediate retry (for a connection Redis dropped)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
    )


class RedisReplayCache:
    """One key per (issuer, jti), set with SET NX EX: atomic across workers and replicas."""

    PREFIX = "cytokine-cds:jti:"

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._clock = clock

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        # Hashed: bounded key length, and neither value is stored in clear.
        digest = hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()
        ttl = max(1, math.ceil(expires_at - self._clock()))
        try:
            return bool(self._client.set(self.PREFIX + digest, b"1", nx=True, ex=ttl))
        except redis.RedisError as exc:
            raise ReplayCacheUnavailable(f"{type(exc).__name__}") from None
