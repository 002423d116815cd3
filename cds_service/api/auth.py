"""Authentication of every /cds-services call (discovery, services, feedback) by its JWT.

A before_request hook: CORS preflights (OPTIONS) and everything outside /cds-services (such as
/healthz) pass untouched. The verified caller is kept on `flask.g.cds_client` (None when
authentication is off) for the audit trail. A refusal is a 401 (403 for a tenant not allowed)
with an OperationOutcome naming the reason and a `WWW-Authenticate: Bearer` header (RFC 6750).
"""

from __future__ import annotations

import logging
import re

from flask import Flask, g, request

from cds_service.api.errors import ApiError
from cds_service.api.observe import logged_path
from cds_service.auth import AuthFailure, ClientVerifier
from cds_service.observability.metrics import method_label, record_auth_failure

log = logging.getLogger(__name__)

# Everything that reveals clinical reasoning: the CDS Hooks API and the Bundle evaluation.
PROTECTED_PREFIXES = ("/cds-services", "/evaluate")
# RFC 6750 §3: error_description is limited to printable ASCII without `"` and `\`.
_UNSAFE_IN_HEADER = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def install_client_auth(app: Flask, verifier: ClientVerifier | None, base_url: str | None) -> None:
    """Require a verified CDS client JWT on /cds-services (`verifier` None: authentication off).

    `base_url`: the service's public base URL, for the audience; None takes it from each request.
    """

    @app.before_request
    def authenticate_cds_client() -> None:
        # A trailing slash reaches the same endpoint: one spelling for audiences and redaction.
        path = request.path.rstrip("/") or "/"
        protected = any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)
        if request.method == "OPTIONS" or not protected:
            return
        if verifier is None:
            g.cds_client = None
            return
        try:
            g.cds_client = verifier.verify(
                bearer_token(request.headers.get("Authorization")),
                default_audiences(base_url, path),
                endpoints=invoked_paths(path),
            )
        except AuthFailure as failure:
            record_auth_failure(failure.reason)
            # The reason and its message (issuer, kid, URLs): never the token itself, and the
            # path only as its route pattern unless it is one of ours (it may hold anything).
            shown = logged_path()
            message = failure.message.replace(path, shown)
            if path.endswith("/feedback"):  # the service's URL is an accepted audience too
                message = message.replace(
                    path.removesuffix("/feedback"), shown.removesuffix("/feedback")
                )
            log.warning(
                "CDS client refused on %s %s: %s: %s",
                method_label(request.method),
                shown,
                failure.reason,
                message,
            )
            raise refusal(failure) from None


def invoked_paths(path: str) -> list[str]:
    """The endpoint paths a JWT `aud` may name for a call to `path`: the path itself, and for
    /feedback also its service's (Epic signs feedback with the audience typed in for the
    service)."""
    paths = [path]
    service, slash, rest = path.rpartition("/")
    if rest == "feedback" and slash and service.startswith("/cds-services/"):
        paths.append(service)
    return paths


def default_audiences(base_url: str | None, path: str) -> list[str]:
    """The `aud` values accepted by default: the endpoint paths of `invoked_paths` on the
    configured public base URL (never the request's Host header, which the caller controls)."""
    if base_url is None:
        return []  # only the audiences configured per client (checked at start-up)
    return [base_url + p for p in invoked_paths(path)]


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthFailure(
            "missing_token", "this endpoint requires an `Authorization: Bearer <JWT>` header"
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthFailure("malformed_header", "the Authorization header must be `Bearer <JWT>`")
    return token


def refusal(failure: AuthFailure) -> ApiError:
    message = f"{failure.reason}: {failure.message}"
    if failure.status == 503:  # the replay cache is down: not the client's fault
        return ApiError(503, message, headers={"Retry-After": "1"})
    if failure.reason == "missing_token":
        challenge = 'Bearer realm="cds-services"'  # RFC 6750 §3.1: no error code without a token
    else:
        code = {"malformed_header": "invalid_request", "tenant_not_allowed": "insufficient_scope"}
        description = _UNSAFE_IN_HEADER.sub("?", message)[:300]
        error = code.get(failure.reason, "invalid_token")
        challenge = (
            f'Bearer realm="cds-services", error="{error}", error_description="{description}"'
        )
    return ApiError(failure.status, message, headers={"WWW-Authenticate": challenge})
