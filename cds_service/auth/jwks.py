"""Public keys of CDS clients: parsing JWKs, and fetching `jku` JWK Sets with a bounded cache.

Verification must stay cheap and must never wait on the network per call, so a fetched JWK Set
is kept for as long as its Cache-Control allows (within configured bounds), fetched again early
only when a token names a `kid` it does not hold (at most once per refresh interval), and kept
in use while its server is unreachable. A fetch never follows redirects and has a short timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from werkzeug.datastructures import ResponseCacheControl
from werkzeug.http import parse_cache_control_header, parse_date

from cds_service.urls import is_loopback_host

log = logging.getLogger(__name__)

# The JWS algorithm each EC curve signs with (RFC 7518 §3.4).
_CURVE_ALGORITHM = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS = 2048
# A JWK Set of a few keys is a few KiB; anything much larger is not a JWK Set.
MAX_JWKS_BYTES = 64 * 1024


class JwkError(ValueError):
    """A JWK that cannot be used to verify CDS client JWTs."""


class JwksUnavailable(Exception):
    """No usable key set for a `jku` URL: never fetched successfully, or too long unreachable."""


@dataclass(frozen=True)
class VerificationKey:
    """One public key of a CDS client, ready to verify signatures."""

    kid: str
    kty: str
    key: EllipticCurvePublicKey | RSAPublicKey
    alg: str | None = None  # the JWK's own `alg`, when it names one
    curve_algorithm: str | None = None  # for EC keys: the only algorithm its curve signs

    def refuses(self, alg: str) -> str | None:
        """Why this key cannot verify a JWT signed with `alg`, or None when it can."""
        if self.alg is not None and self.alg != alg:
            return f"key '{self.kid}' is for {self.alg}, the JWT says {alg}"
        if self.kty == "EC" and alg != self.curve_algorithm:
            return f"key '{self.kid}' is an EC key for {self.curve_algorithm}, the JWT says {alg}"
        if self.kty == "RSA" and alg not in _RSA_ALGORITHMS:
            return f"key '{self.kid}' is an RSA key, the JWT says {alg}"
        return None


def parse_jwk(jwk: Any) -> VerificationKey:
    """A public EC (P-256/384/521) or RSA (2048 bits or more) signing key with a `kid`."""
    if not isinstance(jwk, Mapping):
        raise JwkError("a key must be a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise JwkError("a key has no `kid`")
    kty = jwk.get("kty")
    private = sorted(_PRIVATE_MEMBERS & set(jwk))
    if kty == "oct":
        raise JwkError(f"key '{kid}' is symmetric (kty oct); only EC and RSA keys are accepted")
    if private:
        raise JwkError(f"key '{kid}' holds private key material ({', '.join(private)})")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise JwkError(f"key '{kid}' is for use '{use}', not 'sig'")
    alg = jwk.get("alg")
    if alg is not None and not isinstance(alg, str):
        raise JwkError(f"key '{kid}' has a non-string `alg`")
    try:
        if kty == "EC":
            curve_algorithm = _CURVE_ALGORITHM.get(jwk.get("crv"))  # type: ignore[arg-type]
            if curve_algorithm is None:
                raise JwkError(f"key '{kid}' uses curve {jwk.get('crv')!r}; P-256/384/521 only")
            ec_key = ECAlgorithm.from_jwk(dict(jwk))
            if not isinstance(ec_key, EllipticCurvePublicKey):
                raise JwkError(f"key '{kid}' is not an EC public key")
            return VerificationKey(kid, "EC", ec_key, alg, curve_algorithm)
        if kty == "RSA":
            rsa_key = RSAAlgorithm.from_jwk(dict(jwk))
            if not isinstance(rsa_key, RSAPublicKey):
                raise JwkError(f"key '{kid}' is not an RSA public key")
            if rsa_key.key_size < MIN_RSA_BITS:
                raise JwkError(f"key '{kid}' has {rsa_key.key_size} bits; {MIN_RSA_BITS} needed")
            return VerificationKey(kid, "RSA", rsa_key, alg)
    except JwkError:
        raise
    except Exception as exc:  # PyJWT raises several types for malformed members
        raise JwkError(f"key '{kid}' is not a valid {kty} JWK ({exc})") from None
    raise JwkError(f"key '{kid}' has kty {kty!r}; EC and RSA keys only")


def parse_jwk_set(document: Any, *, strict: bool) -> dict[str, VerificationKey]:
    """The usable keys of a JWK Set by `kid`.

    strict (a configured set): any unusable key is an error. Otherwise (a fetched set, which may
    also publish encryption or other-algorithm keys) unusable keys are skipped with a log line.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwkError('a JWK Set must be a JSON object with a "keys" array')
    keys: dict[str, VerificationKey] = {}
    for jwk in document["keys"]:
        try:
            key = parse_jwk(jwk)
        except JwkError as exc:
            if strict:
                raise
            log.info("JWKS key skipped: %s", exc)
            continue
        if key.kid in keys:
            if strict:
                raise JwkError(f"two keys have kid '{key.kid}'")
            log.warning("JWKS has two keys with kid %r; the first is used", key.kid)
            continue
        keys[key.kid] = key
    return keys


def jku_problem(url: str) -> str | None:
    """Why `url` may not be fetched as a JWK Set, or None: https, or http on loopback only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "is not a valid URL"
    if not host:
        return "has no host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback_host(host):
        return None  # tests and local demos
    return "must be an https URL (http only on a loopback address)"


class JwksFetchError(Exception):
    pass


@dataclass(frozen=True)
class FetchedKeys:
    keys: dict[str, VerificationKey]
    max_age: float | None  # seconds, from Cache-Control / Expires; None when the server says none


def fetch_jwk_set(url: str, *, timeout: float) -> FetchedKeys:
    """GET a JWK Set: no redirects, a size cap, and `timeout` for connect and for the whole read."""
    problem = jku_problem(url)
    if problem:
        raise JwksFetchError(f"the URL {problem}")
    deadline = time.monotonic() + timeout
    try:
        with requests.get(
            url,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
            headers={"Accept": "application/jwk-set+json, application/json"},
        ) as response:
            if 300 <= response.status_code < 400:
                raise JwksFetchError(
                    f"it answered with a redirect (HTTP {response.status_code}); "
                    "redirects are not followed"
                )
            if response.status_code != 200:
                raise JwksFetchError(f"it answered HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_content(8192):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksFetchError(f"its answer is larger than {MAX_JWKS_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise JwksFetchError(f"its answer took longer than {timeout} s")
            headers = response.headers
    except requests.RequestException as exc:
        raise JwksFetchError(f"it could not be reached ({type(exc).__name__})") from None
    try:
        keys = parse_jwk_set(orjson.loads(body), strict=False)
    except (orjson.JSONDecodeError, JwkError) as exc:
        raise JwksFetchError(f"its answer is not a JWK Set ({exc})") from None
    return FetchedKeys(keys, _max_age(headers))


def _max_age(headers: Mapping[str, str]) -> float | None:
    control = parse_cache_control_header(headers.get("Cache-Control"), cls=ResponseCacheControl)
    if control.no_store or control.no_cache:
        return 0.0
    if control.max_age is not None:
        age = headers.get("Age", "0")
        return max(0.0, control.max_age - (int(age) if age.isdigit() else 0))
    expires = parse_date(headers.get("Expires"))
    if expires is not None:
        now = parse_date(headers.get("Date")) or datetime.now(UTC)
        return max(0.0, (expires - now).total_seconds())
    return None


@dataclass
class _Entry:
    lock: threading.Lock
    keys: dict[str, VerificationKey] | None = None
    fresh_until: float = 0.0  # monotonic clock
    usable_until: float = 0.0  # stale keys stay in use until then while fetches fail
    last_attempt: float | None = None
    last_error: str | None = None


class JwksCache:
    """JWK Sets by `jku` URL, shared by the threads of one process."""

    def __init__(
        self,
        *,
        timeout: float,
        min_ttl: float,
        max_ttl: float,
        refresh_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout = timeout
        self._min_ttl = min_ttl
        self._max_ttl = max_ttl
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def find(self, url: str, kid: str) -> VerificationKey | None:
        """The key `kid` of the set at `url`, or None when the set does not hold it.

        Raises JwksUnavailable when no usable copy of the set can be had.
        """
        entry = self._entries.get(url) or self._entries.setdefault(url, _Entry(threading.Lock()))
        keys = entry.keys
        if keys is not None and kid in keys and self._clock() < entry.fresh_until:
            return keys[kid]  # the hot path: no lock, no network
        if self._may_fetch(entry):
            self._refresh(url, entry)
        if entry.keys is not None and self._clock() < entry.usable_until:
            return entry.keys.get(kid)
        raise JwksUnavailable(entry.last_error or "its JWK Set has not been fetched yet")

    def _may_fetch(self, entry: _Entry) -> bool:
        now = self._clock()
        interval_passed = (
            entry.last_attempt is None or now - entry.last_attempt >= self._refresh_interval
        )
        if entry.keys is not None and now >= entry.fresh_until and entry.last_error is None:
            return True  # expired after a good fetch: fetch again now
        # An unknown kid, or retrying after a failure: at most once per refresh interval.
        return interval_passed

    def _refresh(self, url: str, entry: _Entry) -> None:
        seen = entry.last_attempt
        # With keys in hand, a call does not wait for another thread's fetch: it uses them.
        # Without, it waits at most as long as that fetch can take.
        if entry.keys is not None:
            acquired = entry.lock.acquire(blocking=False)
        else:
            acquired = entry.lock.acquire(timeout=2 * self._timeout + 1)
        if not acquired:
            return
        try:
            if entry.last_attempt != seen:
                return  # another thread fetched while this one waited
            entry.last_attempt = self._clock()
            try:
                fetched = fetch_jwk_set(url, timeout=self._timeout)
            except JwksFetchError as exc:
                entry.last_error = f"the JWK Set at {url} could not be fetched: {exc}"
                log.warning("%s", entry.last_error)
                return
            max_age = fetched.max_age if fetched.max_age is not None else self._min_ttl
            ttl = min(max(max_age, self._min_ttl), self._max_ttl)
            now = self._clock()
            entry.keys = fetched.keys
            entry.fresh_until = now + ttl
            entry.usable_until = now + ttl + self._max_ttl
            entry.last_error = None
            log.info("fetched JWK Set %s: %d keys, kept %d s", url, len(fetched.keys), ttl)
        finally:
            entry.lock.release()
