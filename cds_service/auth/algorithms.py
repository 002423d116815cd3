"""The JWS algorithms a CDS client's JWT may be signed with.

Asymmetric only: CDS Hooks forbids `none` and every HMAC (HS*) algorithm.
"""

from typing import Literal, get_args

JwtAlgorithm = Literal[
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"
]
ASYMMETRIC_ALGORITHMS: tuple[JwtAlgorithm, ...] = get_args(JwtAlgorithm)
