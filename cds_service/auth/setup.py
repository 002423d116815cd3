"""Building client authentication, and the start-up rules that go with it.

The composition root (cds_service/composition.py) passes the configured values in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import redis

from cds_service.auth.algorithms import JwtAlgorithm
from cds_service.auth.jwks import JwksCache
from cds_service.auth.replay import RedisReplayCache, ReplayCache, connect_redis
from cds_service.auth.trusted_clients import TrustedClientsError, load_trusted_clients
from cds_service.auth.verify import ClientVerifier
from cds_service.urls import is_loopback_host

log = logging.getLogger(__name__)


class AuthConfigError(ValueError):
    """Authentication is misconfigured: start-up stops with this message."""


def build_verifier(
    *,
    enabled: bool,
    trusted_clients: Path | None,
    algorithms: Sequence[JwtAlgorithm],
    public_base_url: str | None,
    jwks: JwksCache,
    redis_url: str | None,
    database_replay: ReplayCache,
    max_lifetime: int,
    leeway: int,
) -> ClientVerifier | None:
    """The JWT verifier, or None when authentication is off (after a warning).

    `database_replay` is the replay cache in the audit store's database, used unless a Redis URL
    is set: either way every worker (and every replica sharing it) sees every accepted `jti`.
    """
    if not enabled:
        log.warning(
            "CYTOKINE_CDS_AUTH=off: CDS clients are NOT authenticated; anyone who reaches "
            "this service can call it. Use this only for a local demo."
        )
        return None
    if trusted_clients is None:
        raise AuthConfigError(
            "CYTOKINE_CDS_AUTH is on (the default) but CYTOKINE_CDS_TRUSTED_CLIENTS names no "
            "trusted-clients file; set it (see README, 'Authentication'), or set "
            "CYTOKINE_CDS_AUTH=off for a local demo"
        )
    try:
        clients = load_trusted_clients(trusted_clients)
    except TrustedClientsError as exc:
        raise AuthConfigError(f"CYTOKINE_CDS_TRUSTED_CLIENTS: {exc}") from None
    for client in clients.clients:
        if client.algorithms and not set(client.algorithms) & set(algorithms):
            raise AuthConfigError(
                f"CYTOKINE_CDS_TRUSTED_CLIENTS: client '{client.iss}' allows only "
                f"{', '.join(client.algorithms)}, none of which is in CYTOKINE_CDS_JWT_ALGORITHMS"
            )
    unbound = [c.name or c.iss for c in clients.clients if not c.audiences]
    if public_base_url is None and unbound:
        # The audience must never come from the request (its Host header is the caller's).
        raise AuthConfigError(
            "CYTOKINE_CDS_AUTH is on but CYTOKINE_CDS_PUBLIC_BASE_URL is not set: the JWT "
            "audience is the URL the client calls, which only that setting knows. Set it (e.g. "
            "https://cds.hospital.example), or give every client `audiences` in "
            f"CYTOKINE_CDS_TRUSTED_CLIENTS (missing for: {', '.join(unbound[:3])})"
        )
    log.info(
        "CDS client authentication on: %d trusted issuer(s); replay cache %s",
        len(clients.clients),
        "in Redis" if redis_url else "in the audit store's database",
    )
    return ClientVerifier(
        clients.clients,
        jwks=jwks,
        replay=_redis_replay_cache(redis_url) if redis_url else database_replay,
        algorithms=algorithms,
        max_lifetime=max_lifetime,
        leeway=leeway,
    )


def _redis_replay_cache(url: str) -> ReplayCache:
    parts = urlsplit(url)
    shown = f"{parts.hostname}:{parts.port or 6379}"  # never the password
    try:
        client = connect_redis(url)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise AuthConfigError(
            f"CYTOKINE_CDS_REDIS_URL: Redis at {shown} cannot be used ({type(exc).__name__})"
        ) from None
    return RedisReplayCache(client)


def check_bind_allowed(host: str, *, auth_on: bool, allow_non_loopback: bool) -> None:
    """With authentication off, serve on loopback only unless explicitly allowed."""
    if auth_on or allow_non_loopback:
        return
    if not is_loopback_host(host):
        raise AuthConfigError(
            f"CYTOKINE_CDS_AUTH=off: refusing to serve on non-loopback address '{host}' without "
            "authentication; bind 127.0.0.1, turn authentication on, or set "
            "CYTOKINE_CDS_AUTH_OFF_ALLOW_NON_LOOPBACK=true"
        )
