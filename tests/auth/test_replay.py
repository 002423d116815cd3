"""`jti` replay caches: in process (per worker), and in a real redis-server (shared)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.auth import AuthConfigError
from cds_service.auth.replay import (
    InProcessReplayCache,
    RedisReplayCache,
    ReplayCacheUnavailable,
    connect_redis,
)
from cds_service.settings import Settings
from tests.auth.conftest import BASE, DISCOVERY, Signer, bearer, redis_server
from tests.servers import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_in_process_cache_accepts_a_jti_once_until_it_expires() -> None:
    clock = Clock()
    cache = InProcessReplayCache(clock)
    assert cache.first_use("iss-a", "j1", clock.now + 360)
    assert not cache.first_use("iss-a", "j1", clock.now + 360)
    assert cache.first_use("iss-b", "j1", clock.now + 360), "per issuer"
    assert cache.first_use("iss-a", "j2", clock.now + 60)
    assert len(cache) == 3
    clock.now += 61  # j2 has expired (so its token is refused as expired anyway): purged
    assert not cache.first_use("iss-a", "j1", clock.now + 360)
    assert len(cache) == 2
    clock.now += 300
    assert len(cache) == 2  # purged lazily, on the next use
    assert cache.first_use("iss-a", "j1", clock.now + 360)
    assert len(cache) == 1


def test_redis_cache_accepts_a_jti_once_and_expires_it_with_the_token(redis_url: str) -> None:
    client = connect_redis(redis_url)
    cache = RedisReplayCache(client)
    expires_at = time.time() + 360
    jti = str(uuid.uuid4())
    assert cache.first_use("iss-a", jti, expires_at)
    assert not cache.first_use("iss-a", jti, expires_at)
    assert cache.first_use("iss-b", jti, expires_at), "per issuer"
    keys = client.keys(RedisReplayCache.PREFIX + "*")
    assert len(keys) == 2
    assert all(jti.encode() not in key for key in keys), "stored hashed"
    assert 350 <= client.ttl(keys[0]) <= 360


def test_redis_cache_that_cannot_be_reached_says_so() -> None:
    unreachable = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(ReplayCacheUnavailable):
        RedisReplayCache(unreachable).first_use("iss", "jti", time.time() + 60)
    assert time.monotonic() - started < 2, "no back-off on the hot path"


def used_on_one_refused_on_the_other(
    settings: Settings, signer: Signer
) -> tuple[FlaskClient, FlaskClient, str]:
    """Two apps of the same settings: a token the first accepts, the second refuses as replayed.
    Returns both test clients and the token."""
    first, second = create_app(settings).test_client(), create_app(settings).test_client()
    token = signer.token()
    assert first.get(DISCOVERY, headers=bearer(token)).status_code == 200
    replay = second.get(DISCOVERY, headers=bearer(token))
    assert replay.status_code == 401
    assert replay.get_json()["issue"][0]["diagnostics"].startswith("replayed: ")
    return first, second, token


def test_two_apps_sharing_redis_refuse_each_others_replays(
    redis_url: str, trusted_clients: Path, ec_signer: Signer
) -> None:
    # Two app instances stand for two gunicorn workers (or two replicas): with Redis, a token
    # used on one is refused on the other. (tests/auth/test_served.py does it with gunicorn.)
    settings = Settings(trusted_clients=trusted_clients, redis_url=redis_url, public_base_url=BASE)  # type: ignore[arg-type]
    used_on_one_refused_on_the_other(settings, ec_signer)


def test_without_redis_two_apps_sharing_the_database_refuse_each_others_replays(
    trusted_clients: Path, ec_signer: Signer
) -> None:
    # The default: the replay cache is a table in the audit store's database (SQLite here), which
    # every worker of a server opens. (tests/auth/test_served.py does it with gunicorn.)
    settings = Settings(trusted_clients=trusted_clients, public_base_url=BASE)
    first, second, token = used_on_one_refused_on_the_other(settings, ec_signer)
    assert first.get(DISCOVERY, headers=bearer(token)).status_code == 401
    assert second.get(DISCOVERY, headers=bearer(ec_signer.token())).status_code == 200


def test_redis_going_down_answers_503_not_acceptance(
    tmp_path: Path, trusted_clients: Path, ec_signer: Signer
) -> None:
    with redis_server(tmp_path) as url:
        client = create_app(
            Settings(trusted_clients=trusted_clients, redis_url=url, public_base_url=BASE)  # type: ignore[arg-type]
        ).test_client()
        assert client.get(DISCOVERY, headers=bearer(ec_signer.token())).status_code == 200
    # redis-server has stopped: a replay can no longer be ruled out.
    down = client.get(DISCOVERY, headers=bearer(ec_signer.token()))
    assert down.status_code == 503
    assert down.get_json()["issue"][0]["diagnostics"].startswith("replay_cache_unavailable: ")
    assert "WWW-Authenticate" not in down.headers


def test_an_unreachable_redis_stops_start_up_without_showing_its_password(
    trusted_clients: Path,
) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    with pytest.raises(AuthConfigError) as caught:
        create_app(Settings(trusted_clients=trusted_clients, redis_url=url, public_base_url=BASE))  # type: ignore[arg-type]
    assert "CYTOKINE_CDS_REDIS_URL" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
