"""What JWT verification costs per call on the hot path (keys cached, in-process replay cache).

Run: .venv/bin/python bench/auth_verify.py [count]. Prints microseconds per verification for
ES384 (P-384) and RS384 (RSA 2048) tokens; tokens are signed beforehand (that is the client's
cost), each with its own jti, as real calls are.
"""

from __future__ import annotations

import sys
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.auth.jwks import JwksCache
from cds_service.auth.replay import InProcessReplayCache
from cds_service.auth.trusted_clients import TrustedClient
from cds_service.auth.verify import ClientVerifier

AUDIENCE = "https://cds.example.org/cds-services/cytokine-storm-patient-view"


def main(count: int) -> None:
    ec_key = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "ES384": (ec_key, ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)),
        "RS384": (rsa_key, RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)),
    }
    for alg, (private_key, jwk) in cases.items():
        issuer = f"https://{alg.lower()}.example.org"
        client = TrustedClient(iss=issuer, jwks={"keys": [{**jwk, "kid": "k"}]})
        verifier = ClientVerifier(
            [client],
            jwks=JwksCache(timeout=1, min_ttl=60, max_ttl=3600, refresh_interval=60),
            replay=InProcessReplayCache(),
            algorithms=[alg],
            max_lifetime=3600,
            leeway=60,
        )
        now = int(time.time())
        tokens = [
            jwt.encode(
                {
                    "iss": issuer,
                    "aud": AUDIENCE,
                    "iat": now,
                    "exp": now + 300,
                    "jti": str(uuid.uuid4()),
                },
                private_key,
                algorithm=alg,
                headers={"kid": "k"},
            )
            for _ in range(count)
        ]
        started = time.perf_counter()
        for token in tokens:
            verifier.verify(token, [AUDIENCE])
        elapsed = time.perf_counter() - started
        print(f"{alg}: {elapsed / count * 1e6:7.1f} µs per verification ({count} tokens)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
