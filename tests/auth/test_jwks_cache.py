"""The `jku` JWK Set cache against a real HTTP server on 127.0.0.1.

Time is a controllable clock passed to the cache, so expiry is tested without sleeping; the
fetches themselves are real HTTP requests, counted by the server.
"""

from __future__ import annotations

import json
import logging
import time
from email.utils import formatdate
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.auth.jwks import MAX_JWKS_BYTES, JwksCache, JwksUnavailable, jku_problem
from tests.auth.conftest import DISCOVERY, AuthApp, JwksServer, Route, Signer, bearer

PATH = "/keys.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def cache(clock: Clock, **options: Any) -> JwksCache:
    settings: dict[str, Any] = {
        "timeout": 2.0,
        "min_ttl": 60,
        "max_ttl": 3600,
        "refresh_interval": 30,
        **options,
    }
    return JwksCache(clock=clock, **settings)


@pytest.mark.parametrize(
    ("cache_control", "kept_for"),
    [
        ("max-age=600", 600),
        ("public, max-age=600", 600),
        ("max-age=5", 60),  # raised to the minimum
        ("max-age=999999", 3600),  # cut to the maximum
        (None, 60),  # no header: the minimum
        ("no-store", 60),  # we must keep keys to avoid a fetch per call: the minimum
    ],
)
def test_a_fetched_set_is_kept_as_its_cache_headers_say_within_bounds(
    jwks_server: JwksServer,
    ec_signer: Signer,
    clock: Clock,
    cache_control: str | None,
    kept_for: int,
) -> None:
    headers = {"Cache-Control": cache_control} if cache_control else {}
    jwks_server.publish(PATH, [ec_signer.jwk()], **headers)
    jwks = cache(clock)
    url = jwks_server.url(PATH)
    assert jwks.find(url, ec_signer.kid) is not None
    clock.now += kept_for - 1
    assert jwks.find(url, ec_signer.kid) is not None
    assert jwks_server.hits[PATH] == 1
    clock.now += 2
    assert jwks.find(url, ec_signer.kid) is not None
    assert jwks_server.hits[PATH] == 2


def test_expires_header_is_used_without_max_age(
    jwks_server: JwksServer, ec_signer: Signer, clock: Clock
) -> None:
    # http.server sends Date (now); Expires is 20 minutes later (to the second).
    jwks_server.publish(
        PATH, [ec_signer.jwk()], Expires=formatdate(time.time() + 1200, usegmt=True)
    )
    jwks = cache(clock)
    jwks.find(jwks_server.url(PATH), ec_signer.kid)
    clock.now += 1190
    jwks.find(jwks_server.url(PATH), ec_signer.kid)
    assert jwks_server.hits[PATH] == 1
    clock.now += 20
    jwks.find(jwks_server.url(PATH), ec_signer.kid)
    assert jwks_server.hits[PATH] == 2


def test_an_unknown_kid_refreshes_at_most_once_per_interval(
    jwks_server: JwksServer, ec_signer: Signer, clock: Clock
) -> None:
    jwks_server.publish(PATH, [ec_signer.jwk()], **{"Cache-Control": "max-age=3600"})
    jwks = cache(clock, refresh_interval=30)
    url = jwks_server.url(PATH)
    assert jwks.find(url, ec_signer.kid) is not None
    # A flood of unknown kids right after a fetch causes no fetch at all.
    for n in range(20):
        assert jwks.find(url, f"unknown-{n}") is None
    assert jwks_server.hits[PATH] == 1

    rotated = Signer(ec.generate_private_key(ec.SECP384R1()), "rotated", "ES384")
    jwks_server.publish(PATH, [ec_signer.jwk(), rotated.jwk()])
    clock.now += 10
    assert jwks.find(url, "rotated") is None  # within the interval: not fetched yet
    clock.now += 21
    assert jwks.find(url, "rotated") is not None
    assert jwks_server.hits[PATH] == 2
    assert jwks.find(url, "rotated") is not None
    assert jwks_server.hits[PATH] == 2


def test_redirects_are_not_followed(jwks_server: JwksServer, ec_signer: Signer) -> None:
    jwks_server.publish("/real.json", [ec_signer.jwk()])
    jwks_server.routes[PATH] = Route(b"", 302, {"Location": jwks_server.url("/real.json")})
    with pytest.raises(JwksUnavailable, match="redirect"):
        cache(Clock()).find(jwks_server.url(PATH), ec_signer.kid)
    assert "/real.json" not in jwks_server.hits


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (Route(b"not json"), "not a JWK Set"),
        (Route(b'{"keys": "none"}'), "not a JWK Set"),
        (Route(b'{"keys": []}', status=500), "HTTP 500"),
        (Route(json.dumps({"keys": [{"pad": "x" * MAX_JWKS_BYTES}]}).encode()), "larger than"),
    ],
)
def test_a_broken_answer_is_unavailable_naming_why(
    jwks_server: JwksServer, route: Route, problem: str
) -> None:
    jwks_server.routes[PATH] = route
    with pytest.raises(JwksUnavailable, match=problem):
        cache(Clock()).find(jwks_server.url(PATH), "any")


def test_unusable_keys_in_a_fetched_set_are_skipped(
    jwks_server: JwksServer, ec_signer: Signer
) -> None:
    jwks_server.publish(
        PATH,
        [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {**ec_signer.jwk(), "kid": "for-encryption", "use": "enc"},
            {
                "kty": "OKP",
                "kid": "ed",
                "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            },
            ec_signer.jwk(),
        ],
    )
    jwks = cache(Clock())
    url = jwks_server.url(PATH)
    assert jwks.find(url, ec_signer.kid) is not None
    assert jwks.find(url, "hmac") is None
    assert jwks.find(url, "for-encryption") is None
    assert jwks.find(url, "ed") is None


def test_a_server_that_never_answers_does_not_hang_calls(
    jwks_server: JwksServer, clock: Clock
) -> None:
    jwks_server.routes[PATH] = Route(b"", hang=True)
    jwks = cache(clock, timeout=0.3, refresh_interval=30)
    started = time.monotonic()
    with pytest.raises(JwksUnavailable, match="could not be reached"):
        jwks.find(jwks_server.url(PATH), "any")
    assert time.monotonic() - started < 3
    # Within the refresh interval, calls fail at once without trying again.
    started = time.monotonic()
    for _ in range(5):
        with pytest.raises(JwksUnavailable):
            jwks.find(jwks_server.url(PATH), "any")
    assert time.monotonic() - started < 0.2
    assert jwks_server.hits[PATH] == 1


def test_a_server_that_is_down_keeps_the_last_keys_in_use(
    jwks_server: JwksServer, ec_signer: Signer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    jwks_server.publish(PATH, [ec_signer.jwk()], **{"Cache-Control": "max-age=60"})
    jwks = cache(clock, min_ttl=60, max_ttl=600)
    url = jwks_server.url(PATH)
    assert jwks.find(url, ec_signer.kid) is not None
    jwks_server.routes[PATH] = Route(b"", status=503)
    clock.now += 61
    with caplog.at_level(logging.WARNING):
        assert jwks.find(url, ec_signer.kid) is not None  # stale, still in use
    assert jwks_server.hits[PATH] == 2
    assert "HTTP 503" in caplog.text
    # Stale keys are kept for at most the maximum cache time past their expiry.
    clock.now += 600
    with pytest.raises(JwksUnavailable, match="HTTP 503"):
        jwks.find(url, ec_signer.kid)


def test_a_connection_refused_is_unavailable(ec_signer: Signer) -> None:
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}/jwks.json"  # nothing listens there
    with pytest.raises(JwksUnavailable, match="could not be reached"):
        cache(Clock()).find(url, ec_signer.kid)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://ehr.example.org/jwks.json", True),
        ("http://127.0.0.1:8080/jwks.json", True),
        ("http://127.0.0.2/jwks.json", True),
        ("http://localhost/jwks.json", True),
        ("http://[::1]/jwks.json", True),
        ("http://ehr.invalid/jwks.json", False),
        ("http://10.0.0.1/jwks.json", False),
        ("ftp://ehr.invalid/jwks.json", False),
        ("file:///etc/passwd", False),
        ("https:///jwks.json", False),
    ],
)
def test_only_https_or_loopback_http_jku_urls(url: str, allowed: bool) -> None:
    assert (jku_problem(url) is None) is allowed


def test_a_plain_http_jku_off_loopback_is_never_fetched(ec_signer: Signer) -> None:
    with pytest.raises(JwksUnavailable, match="https"):
        cache(Clock()).find("http://ehr.invalid/jwks.json", ec_signer.kid)


def test_through_the_app_a_hanging_jwks_server_answers_401_quickly(
    auth_client: AuthApp, ec_signer: Signer, jwks_server: JwksServer
) -> None:
    jwks_server.routes["/ehr/jwks.json"] = Route(b"", hang=True)
    client = auth_client(jwks_fetch_timeout_seconds=0.3)
    started = time.monotonic()
    response = client.get(DISCOVERY, headers=bearer(ec_signer.token()))
    assert time.monotonic() - started < 3
    assert response.status_code == 401
    assert response.get_json()["issue"][0]["diagnostics"].startswith("jwks_unavailable: ")
    again = client.get(DISCOVERY, headers=bearer(ec_signer.token()))
    assert again.status_code == 401
    assert jwks_server.hits["/ehr/jwks.json"] == 1
