"""Authentication of CDS clients: the signed JWT of CDS Hooks 2.0 ("Trusting CDS Clients").

trusted_clients (the file of trusted issuers), jwks (public keys and the `jku` cache), replay
(`jti` caches), verify (the verifier), setup (building it from Settings; start-up rules).
"""

from cds_service.auth.setup import AuthConfigError, build_verifier, check_bind_allowed
from cds_service.auth.verify import AuthFailure, ClientVerifier, VerifiedClient

__all__ = [
    "AuthConfigError",
    "AuthFailure",
    "ClientVerifier",
    "VerifiedClient",
    "build_verifier",
    "check_bind_allowed",
]
