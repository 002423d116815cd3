"""Verification of the JWT a CDS client signs for every call (CDS Hooks 2.0, "Trusting CDS
Clients"), with PyJWT for the signature and registered claims.

Checks, in order: header (`alg` asymmetric and allowed, `typ` JWT, `kid`), issuer trusted,
`jku` on the issuer's list (before any fetch), the key with that `kid`, `exp`/`iat`/`nbf` JSON
numbers (RFC 7519 NumericDate, never numeric strings), signature, `aud` one of the accepted
audiences (the client's configured ones, else the endpoint URLs the caller computed from the
configured public base URL — never from the request), `exp`/`iat`/`nbf` within the clock-skew
leeway, lifetime at most the maximum, `jti` present, `sub` as configured, tenant allowed, and
last — so only fully valid tokens are remembered — `jti` not seen before. Each failure names its
reason; nothing of the token is logged here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt

from cds_service.auth.jwks import JwksCache, JwksUnavailable, VerificationKey
from cds_service.auth.replay import ReplayCache, ReplayCacheUnavailable
from cds_service.auth.trusted_clients import CardOptions, TrustedClient

MAX_TOKEN_CHARS = 16 * 1024
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
NUMERIC_DATES = ("exp", "iat", "nbf")
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class VerifiedClient:
    """Who called, once the JWT verified: kept on flask.g for the audit trail."""

    iss: str
    tenant: str | None
    jti: str
    kid: str
    cards: CardOptions = field(default_factory=CardOptions)


class AuthFailure(Exception):
    """A refused JWT: `reason` is a stable code, `message` says what to fix."""

    def __init__(self, reason: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass(frozen=True)
class _Client:
    trusted: TrustedClient
    static_keys: dict[str, VerificationKey]
    algorithms: frozenset[str]


def _shown(value: Any, limit: int = 120) -> str:
    """A claim or header value as it may appear in a message or log: printable, cut short."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(char if char.isprintable() else "?" for char in text[: limit + 1])
    return text if len(text) <= limit else text[:limit] + "…"


class ClientVerifier:
    def __init__(
        self,
        clients: Iterable[TrustedClient],
        *,
        jwks: JwksCache,
        replay: ReplayCache,
        algorithms: Sequence[str],
        max_lifetime: int,
        leeway: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        allowed = frozenset(algorithms)
        self._clients = {
            c.iss: _Client(c, c.static_keys(), allowed & set(c.algorithms or allowed))
            for c in clients
        }
        self._jwks = jwks
        self._replay = replay
        self._algorithms = allowed
        self._max_lifetime = max_lifetime
        self._leeway = leeway
        self._clock = clock

    def verify(
        self, token: str, audiences: Sequence[str], endpoints: Sequence[str] | None = None
    ) -> VerifiedClient:
        """The verified caller, or AuthFailure. `audiences`: the `aud` values accepted by
        default (the endpoint's URLs on the public base URL); a client's configured
        `audiences` replace them, but only those naming one of `endpoints` (the paths invoked,
        see api.auth.invoked_paths; None: all of them): `aud` must be the endpoint invoked."""
        header, unverified = self._parse(token)
        alg, kid = self._check_header(header)
        client = self._client(unverified)
        if alg not in client.algorithms:
            allowed = ", ".join(sorted(client.algorithms))
            raise AuthFailure("alg_not_allowed", f"issuer accepts {allowed}, not {alg}")
        key = self._key(client, header, kid)
        refused = key.refuses(alg)
        if refused:
            raise AuthFailure("key_mismatch", refused)
        for name in NUMERIC_DATES:
            value = unverified.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise AuthFailure(
                    "invalid_claim",
                    f"the `{name}` claim must be a JSON number of seconds (RFC 7519 NumericDate),"
                    f" not {type(value).__name__}",
                )
        accepted = list(audiences)
        configured = client.trusted.audiences
        if configured:
            accepted = [url for url in configured if _names_endpoint(url, endpoints)]
            if not accepted:
                raise AuthFailure(
                    "bad_audience",
                    f"none of this client's `audiences` is the URL of the endpoint invoked "
                    f"({_shown((endpoints or ['?'])[0])}); list each endpoint URL the client "
                    "calls in the trusted-clients file",
                )
        claims = self._decode(token, key, alg, accepted, unverified.get("aud"))
        iat, exp = int(claims["iat"]), int(claims["exp"])
        if exp - iat > self._max_lifetime:
            raise AuthFailure(
                "lifetime_too_long",
                f"the JWT lives {exp - iat} s (exp - iat); at most {self._max_lifetime} s "
                "is accepted (CYTOKINE_CDS_JWT_MAX_LIFETIME_SECONDS)",
            )
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthFailure("invalid_claim", "the `jti` claim must be a non-empty string")
        expected_sub = client.trusted.sub
        if expected_sub is not None and claims.get("sub") != expected_sub:
            raise AuthFailure(
                "bad_subject",
                "the `sub` claim is not the client id configured for this issuer "
                "(`sub` in the trusted-clients file)",
            )
        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise AuthFailure("invalid_claim", "the `tenant` claim must be a string")
        allowed_tenants = client.trusted.tenants
        if allowed_tenants is not None and tenant not in allowed_tenants:
            which = f"tenant '{_shown(tenant)}' is" if tenant else "a JWT without `tenant` is"
            raise AuthFailure(
                "tenant_not_allowed", f"{which} not allowed for this issuer", status=403
            )
        try:
            first_use = self._replay.first_use(client.trusted.iss, jti, exp + self._leeway)
        except ReplayCacheUnavailable as exc:
            raise AuthFailure(
                "replay_cache_unavailable",
                f"the replay cache cannot be reached ({exc}); try again",
                status=503,
            ) from None
        if not first_use:
            raise AuthFailure("replayed", "this `jti` was already used; sign a new JWT per call")
        return VerifiedClient(
            iss=client.trusted.iss, tenant=tenant, jti=jti, kid=kid, cards=client.trusted.cards
        )

    @staticmethod
    def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthFailure("malformed_token", f"the JWT is longer than {MAX_TOKEN_CHARS} chars")
        try:
            parts = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthFailure(
                "malformed_token", "the bearer token is not a JWS compact-serialized JWT"
            ) from None
        return parts["header"], parts["payload"]

    def _check_header(self, header: dict[str, Any]) -> tuple[str, str]:
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise AuthFailure("alg_not_allowed", "the JWT header has no `alg`")
        if alg.lower() == "none":
            raise AuthFailure("alg_not_allowed", "unsigned JWTs (alg none) are refused")
        if alg.upper().startswith("HS"):
            raise AuthFailure(
                "alg_not_allowed", f"symmetric algorithms ({_shown(alg)}) are refused"
            )
        if alg not in self._algorithms:
            allowed = ", ".join(sorted(self._algorithms))
            raise AuthFailure("alg_not_allowed", f"alg {_shown(alg)} is not one of {allowed}")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise AuthFailure("bad_typ", "the JWT header must have `typ` JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthFailure("missing_kid", "the JWT header has no `kid`")
        return alg, kid

    def _client(self, claims: dict[str, Any]) -> _Client:
        iss = claims.get("iss")
        if not isinstance(iss, str) or not iss:
            raise AuthFailure("missing_claim", "the JWT has no `iss` claim")
        client = self._clients.get(iss)
        if client is None:
            raise AuthFailure(
                "unknown_issuer",
                f"issuer '{_shown(iss)}' is not a trusted client (CYTOKINE_CDS_TRUSTED_CLIENTS)",
            )
        return client

    def _key(self, client: _Client, header: dict[str, Any], kid: str) -> VerificationKey:
        # A pinned key is the key: the header's jku is then neither fetched nor needed (Epic
        # sends its jku on every JWT, also to services that pinned its key).
        key = client.static_keys.get(kid)
        if key is not None:
            return key
        jku = header.get("jku")
        if jku is not None and (not isinstance(jku, str) or jku not in client.trusted.jku):
            raise AuthFailure(
                "jku_not_allowed", f"jku '{_shown(jku)}' is not on this issuer's `jku` list"
            )
        # A named jku, or (keys agreed out of band) every jku configured for the issuer.
        urls = (jku,) if jku is not None else client.trusted.jku
        unavailable: list[str] = []
        for url in urls:
            try:
                key = self._jwks.find(url, kid)
            except JwksUnavailable as exc:
                unavailable.append(str(exc))
                continue
            if key is not None:
                return key
        if unavailable and len(unavailable) == len(urls):
            raise AuthFailure("jwks_unavailable", "; ".join(unavailable))
        raise AuthFailure("unknown_kid", f"no key '{_shown(kid)}' among this issuer's keys")

    def _decode(
        self, token: str, key: VerificationKey, alg: str, accepted: list[str], aud: Any
    ) -> dict[str, Any]:
        if not accepted:
            raise AuthFailure("bad_audience", _audience_help(aud, accepted))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                # A trailing slash on the client's side is tolerated.
                audience=[a for url in accepted for a in (url, url.rstrip("/") + "/")],
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_iat": True},
            )
        except jwt.InvalidSignatureError:
            raise AuthFailure(
                "bad_signature", f"the signature does not verify with key '{key.kid}'"
            ) from None
        except jwt.ExpiredSignatureError:
            raise AuthFailure("expired", "the JWT has expired (exp is in the past)") from None
        except jwt.ImmatureSignatureError:
            raise AuthFailure(
                "iat_in_future", "the JWT is issued in the future (iat) or not yet valid (nbf)"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthFailure("missing_claim", f"the JWT has no `{exc.claim}` claim") from None
        except jwt.InvalidAudienceError:
            raise AuthFailure("bad_audience", _audience_help(aud, accepted)) from None
        except jwt.PyJWTError as exc:
            raise AuthFailure("invalid_claim", f"the JWT is invalid ({exc})") from None
        return claims


def _names_endpoint(url: str, endpoints: Sequence[str] | None) -> bool:
    """Whether a configured audience is the URL of one of `endpoints` (paths such as
    /cds-services/x), behind whatever path prefix the public URL has (a reverse proxy's)."""
    if endpoints is None:
        return True
    path = urlsplit(url).path.rstrip("/")
    return any(path == e.rstrip("/") or path.endswith(e.rstrip("/")) for e in endpoints)


def _audience_help(aud: Any, accepted: list[str]) -> str:
    """What to fix when `aud` is not accepted; names the localhost / 127.0.0.1 mix-up."""
    if not accepted:
        return (
            "no audience is accepted from this client: set CYTOKINE_CDS_PUBLIC_BASE_URL or the "
            "client's `audiences` in the trusted-clients file"
        )
    shown = ", ".join(accepted[:3]) + (", …" if len(accepted) > 3 else "")
    message = f"`aud` {_shown(aud)} is not accepted here; accepted: {shown}"
    sent = urlsplit(aud).hostname if isinstance(aud, str) else None
    expected = {urlsplit(url).hostname or "" for url in accepted}
    if sent in _LOOPBACK_NAMES and expected & _LOOPBACK_NAMES and sent not in expected:
        return message + (
            f". {sent} and {', '.join(sorted(expected & _LOOPBACK_NAMES))} are different "
            "audiences: open the client on the host of CYTOKINE_CDS_PUBLIC_BASE_URL, or set "
            "that setting to the URL the client calls"
        )
    return message + (
        " (the endpoint's URL on CYTOKINE_CDS_PUBLIC_BASE_URL, or the client's `audiences` in "
        "the trusted-clients file)"
    )
