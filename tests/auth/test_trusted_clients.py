"""The trusted-clients file: the shipped examples load, and every mistake is named at start-up."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from cds_service import create_app
from cds_service.auth import AuthConfigError
from cds_service.auth.trusted_clients import TrustedClientsError, load_trusted_clients
from cds_service.settings import Settings
from tests.auth.conftest import BASE, DISCOVERY, SERVICE, Signer, bearer, write_clients
from tests.conftest import ROOT, load_fixture

SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"


def test_the_shipped_sandbox_file_pins_its_es384_key() -> None:
    clients = load_trusted_clients(ROOT / "deploy/trusted-clients.sandbox.json").clients
    assert [c.iss for c in clients] == [SANDBOX_ISSUER]
    sandbox = clients[0]
    assert sandbox.jku == [SANDBOX_JKU]
    assert sandbox.algorithms == ["ES384"]
    key = sandbox.static_keys()[SANDBOX_KID]
    assert key.kty == "EC" and key.curve_algorithm == "ES384"
    assert "DEMO" in (sandbox.name or "")


def test_the_shipped_ehr_example_loads() -> None:
    clients = load_trusted_clients(ROOT / "deploy/trusted-clients.example.json").clients
    assert all(c.jku and c.jwks is None for c in clients)
    assert clients[0].tenants


def test_a_sandbox_shaped_token_verifies_against_a_pinned_key_without_any_fetch(
    tmp_path: Path,
) -> None:
    # What the sandbox sends (shared reference, "what real clients send"): ES384, its kid, its
    # public jku in the header, iss, aud = the URL called, exp = iat + 300, a UUID jti, no sub
    # and no tenant. Signed here with a test key pinned the way the shipped file pins the
    # sandbox's. The jku is https://sandbox.cds-hooks.org, which tests never reach: the pinned
    # key must be used without a fetch (a fetch would fail and refuse the call).
    signer = Signer(ec.generate_private_key(ec.SECP384R1()), SANDBOX_KID, "ES384", SANDBOX_ISSUER)
    signer.jku = SANDBOX_JKU
    shipped = json.loads((ROOT / "deploy/trusted-clients.sandbox.json").read_text())
    shipped["clients"][0]["jwks"] = {"keys": [signer.jwk(alg="ES384")]}
    path = write_clients(tmp_path / "clients.json", shipped["clients"])
    client = create_app(
        Settings(trusted_clients=path, jwks_fetch_timeout_seconds=0.1, public_base_url=BASE)
    ).test_client()
    now = int(time.time())
    token = signer.token(SERVICE, iat=now, exp=now + 300, jti=str(uuid.uuid4()))
    assert jwt.get_unverified_header(token) == {
        "alg": "ES384",
        "typ": "JWT",
        "kid": SANDBOX_KID,
        "jku": SANDBOX_JKU,
    }
    assert set(jwt.decode(token, options={"verify_signature": False})) == {
        "iss",
        "aud",
        "iat",
        "exp",
        "jti",
    }
    response = client.post(
        SERVICE, json=load_fixture("hooks/patient-view.json"), headers=bearer(token)
    )
    assert response.status_code == 200, response.get_json()
    discovery = signer.token(DISCOVERY, aud=BASE + DISCOVERY)
    assert client.get(DISCOVERY, headers=bearer(discovery)).status_code == 200


def _ec_jwk(**extra: Any) -> dict[str, Any]:
    signer = Signer(ec.generate_private_key(ec.SECP384R1()), "k1", "ES384")
    return {**signer.jwk(), **extra}


def _small_rsa_jwk() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    return {**RSAAlgorithm.to_jwk(key, as_dict=True), "kid": "small"}


ISS = "https://ehr.example.org"
JKU = ["https://ehr.example.org/jwks.json"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ({}, "clients: Field required"),
        ({"clients": []}, "clients: List should have at least 1 item"),
        ({"clients": [{"iss": ISS}]}, "needs `jku` URLs or a static `jwks`"),
        ({"clients": [{"jku": JKU}]}, "clients.0.iss: Field required"),
        ({"clients": [{"iss": ISS, "jku": JKU, "issuer": ISS}]}, "clients.0.issuer: Extra"),
        (
            {"clients": [{"iss": ISS, "jku": ["http://ehr.invalid/jwks.json"]}]},
            "must be an https URL",
        ),
        ({"clients": [{"iss": ISS, "jku": JKU + JKU}]}, "listed twice"),
        (
            {"clients": [{"iss": ISS, "jku": JKU}, {"iss": ISS, "jku": JKU}]},
            f"issuer '{ISS}' is listed twice",
        ),
        ({"clients": [{"iss": ISS, "jwks": {"keys": []}}]}, "has no keys"),
        ({"clients": [{"iss": ISS, "jwks": [_ec_jwk()]}]}, "valid dictionary"),
        (
            {"clients": [{"iss": ISS, "jwks": {"keys": [_ec_jwk(d="AAAA")]}}]},
            "private key material",
        ),
        (
            {
                "clients": [
                    {"iss": ISS, "jwks": {"keys": [{"kty": "oct", "kid": "h", "k": "c2Vj"}]}}
                ]
            },
            "symmetric",
        ),
        ({"clients": [{"iss": ISS, "jwks": {"keys": [_ec_jwk(kid=None)]}}]}, "no `kid`"),
        ({"clients": [{"iss": ISS, "jwks": {"keys": [_ec_jwk(use="enc")]}}]}, "not 'sig'"),
        ({"clients": [{"iss": ISS, "jwks": {"keys": [_ec_jwk(x="AAAA")]}}]}, "not a valid EC"),
        ({"clients": [{"iss": ISS, "jwks": {"keys": [_small_rsa_jwk()]}}]}, "1024 bits"),
        (
            {"clients": [{"iss": ISS, "jwks": {"keys": [_ec_jwk(), _ec_jwk()]}}]},
            "two keys have kid 'k1'",
        ),
        ({"clients": [{"iss": ISS, "jku": JKU, "algorithms": ["HS256"]}]}, "algorithms.0"),
        ({"clients": [{"iss": ISS, "jku": JKU, "tenants": []}]}, "leave it out"),
    ],
)
def test_an_invalid_file_is_refused_naming_the_problem(
    tmp_path: Path, content: Any, problem: str
) -> None:
    path = tmp_path / "trusted.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(TrustedClientsError) as caught:
        load_trusted_clients(path)
    assert problem in str(caught.value)
    assert str(path) in str(caught.value)
    # And the app does not start with it.
    with pytest.raises(AuthConfigError, match="CYTOKINE_CDS_TRUSTED_CLIENTS"):
        create_app(Settings(trusted_clients=path))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrustedClientsError, match="cannot be read"):
        load_trusted_clients(tmp_path / "absent.json")
