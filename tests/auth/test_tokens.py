"""Every /cds-services call needs a JWT signed by a trusted client; each refusal names its reason.

Through the Flask test client with authentication on, real EC P-384 / RSA keys generated in the
tests, and the EC client's JWK Set served by a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import g

from cds_service import create_app
from cds_service.settings import Settings
from tests.auth.conftest import (
    BASE,
    DISCOVERY,
    FEEDBACK,
    FEEDBACK_BODY,
    ISSUER,
    RSA_ISSUER,
    SERVICE,
    AuthApp,
    JwksServer,
    Signer,
    bearer,
    refused,
    unsigned_token,
    write_clients,
)
from tests.conftest import load_fixture


def test_valid_tokens_pass_discovery_a_service_call_and_feedback(
    auth_client: AuthApp, ec_signer: Signer
) -> None:
    client = auth_client()
    discovery = client.get(DISCOVERY, headers=bearer(ec_signer.token(DISCOVERY)))
    assert discovery.status_code == 200
    assert len(discovery.get_json()["services"]) == 3

    call = client.post(
        SERVICE,
        json=load_fixture("hooks/patient-view.json"),
        headers=bearer(ec_signer.token(SERVICE)),
    )
    assert call.status_code == 200, call.get_json()
    assert "cards" in call.get_json()

    feedback = client.post(FEEDBACK, json=FEEDBACK_BODY, headers=bearer(ec_signer.token(FEEDBACK)))
    assert feedback.status_code == 200
    assert feedback.get_json() == {}


def test_the_verified_client_is_kept_on_flask_g(auth_client: AuthApp, ec_signer: Signer) -> None:
    client = auth_client()
    token = ec_signer.token(DISCOVERY, tenant="hospital-a")
    with client:
        assert client.get(DISCOVERY, headers=bearer(token)).status_code == 200
        verified = g.cds_client
    assert (verified.iss, verified.tenant, verified.kid) == (ISSUER, "hospital-a", "ec-key-1")


def test_a_statically_pinned_rsa_key_verifies_rs384_and_ps256(
    auth_client: AuthApp, rsa_signer: Signer
) -> None:
    client = auth_client()
    for alg in ("RS384", "PS256"):
        token = rsa_signer.token(SERVICE, alg=alg)
        response = client.post(
            SERVICE, json=load_fixture("hooks/patient-view.json"), headers=bearer(token)
        )
        assert response.status_code == 200, (alg, response.get_json())


@pytest.mark.parametrize("path", [DISCOVERY, SERVICE, FEEDBACK, "/cds-services/no-such-service"])
def test_no_token_is_401_on_every_cds_services_endpoint(auth_client: AuthApp, path: str) -> None:
    client = auth_client()
    response = client.get(path) if path == DISCOVERY else client.post(path, json={})
    refused(response, "missing_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="cds-services"'


def test_healthz_and_cors_preflight_need_no_token(auth_client: AuthApp) -> None:
    client = auth_client()
    assert client.get("/healthz").status_code == 200
    for path in (DISCOVERY, SERVICE, FEEDBACK):
        preflight = client.options(
            path,
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200, path
        assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()


def test_a_refusal_is_readable_by_a_browser_client(auth_client: AuthApp) -> None:
    response = auth_client().get(DISCOVERY, headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "http://localhost:3000")
    assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic dXNlcjpwYXNz", "malformed_header"),
        ("Bearer", "malformed_header"),
        ("Bearer a b", "malformed_header"),
        ("Bearer not-a-jwt", "malformed_token"),
        ("Bearer a.b.c", "malformed_token"),
    ],
)
def test_malformed_authorization_is_401(auth_client: AuthApp, header: str, reason: str) -> None:
    response = auth_client().get(DISCOVERY, headers={"Authorization": header})
    refused(response, reason)


def _claims(signer: Signer, path: str = DISCOVERY) -> dict[str, Any]:
    return signer.claims(path)


def test_alg_none_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    token = unsigned_token({"alg": "none", "typ": "JWT", "kid": ec_signer.kid}, _claims(ec_signer))
    message = refused(auth_client().get(DISCOVERY, headers=bearer(token)), "alg_not_allowed")
    assert "none" in message


def test_hs256_signed_with_the_public_key_as_secret_is_refused(
    auth_client: AuthApp, ec_signer: Signer, jwks_server: JwksServer
) -> None:
    # The classic algorithm-confusion attack: HMAC keyed with the (public) verification key.
    header = {"alg": "HS256", "typ": "JWT", "kid": ec_signer.kid}
    unsigned = unsigned_token(header, _claims(ec_signer))
    signing_input = unsigned.rsplit(".", 1)[0].encode()
    signature = hmac.new(ec_signer.public_pem(), signing_input, hashlib.sha256).digest()
    token = unsigned_token(header, _claims(ec_signer), signature)
    message = refused(auth_client().get(DISCOVERY, headers=bearer(token)), "alg_not_allowed")
    assert "symmetric" in message
    assert jwks_server.hits == {}, "refused before any key was fetched"


def test_an_algorithm_outside_the_configured_list_is_refused(
    auth_client: AuthApp, ec_signer: Signer
) -> None:
    client = auth_client(jwt_algorithms="RS384")
    refused(client.get(DISCOVERY, headers=bearer(ec_signer.token())), "alg_not_allowed")


def test_typ_other_than_jwt_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    token = ec_signer.token(header={"typ": "at+jwt"})
    refused(auth_client().get(DISCOVERY, headers=bearer(token)), "bad_typ")


def test_missing_kid_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    token = ec_signer.token(header={"kid": ...})
    refused(auth_client().get(DISCOVERY, headers=bearer(token)), "missing_kid")


def test_wrong_kid_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    token = ec_signer.token(header={"kid": "not-a-published-kid"})
    message = refused(auth_client().get(DISCOVERY, headers=bearer(token)), "unknown_kid")
    assert "not-a-published-kid" in message


def test_a_signature_by_another_key_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    impostor = Signer(ec.generate_private_key(ec.SECP384R1()), ec_signer.kid, "ES384")
    impostor.jku = ec_signer.jku
    token = impostor.token()
    refused(auth_client().get(DISCOVERY, headers=bearer(token)), "bad_signature")


def test_a_tampered_payload_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    head, _, signature = ec_signer.token().split(".")
    other_payload = ec_signer.token().split(".")[1]  # a different jti, same signature
    token = f"{head}.{other_payload}.{signature}"
    refused(auth_client().get(DISCOVERY, headers=bearer(token)), "bad_signature")


def test_an_es256_header_on_a_p384_key_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    head_claims = _claims(ec_signer)
    token = unsigned_token(
        {"alg": "ES256", "typ": "JWT", "kid": ec_signer.kid, "jku": ec_signer.jku},
        head_claims,
        b"x" * 64,
    )
    refused(auth_client().get(DISCOVERY, headers=bearer(token)), "key_mismatch")


def test_an_untrusted_issuer_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    token = ec_signer.token(iss="https://attacker.invalid")
    message = refused(auth_client().get(DISCOVERY, headers=bearer(token)), "unknown_issuer")
    assert "https://attacker.invalid" in message


def test_claim_values_cannot_forge_log_lines_or_headers(
    auth_client: AuthApp, ec_signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    token = ec_signer.token(iss='https://x.invalid\nINFO forged line "quoted"')
    with caplog.at_level(logging.WARNING):
        response = auth_client().get(DISCOVERY, headers=bearer(token))
    message = refused(response, "unknown_issuer")
    assert "\n" not in message
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "\n" not in refusals[0]
    description = response.headers["WWW-Authenticate"].split('error_description="')[1]
    assert description.count('"') == 1, "the only quote closes the parameter"


def test_a_jku_not_on_the_issuers_list_is_refused_before_any_fetch(
    auth_client: AuthApp, ec_signer: Signer, jwks_server: JwksServer
) -> None:
    jwks_server.publish("/attacker/jwks.json", [ec_signer.jwk()])
    for jku in (jwks_server.url("/attacker/jwks.json"), "https://attacker.invalid/jwks.json"):
        token = ec_signer.token(header={"jku": jku})
        refused(auth_client().get(DISCOVERY, headers=bearer(token)), "jku_not_allowed")
    assert jwks_server.hits == {}


def test_a_pinned_kid_is_accepted_with_the_jku_its_header_names_without_a_fetch(
    tmp_path: Path, rsa_signer: Signer, jwks_server: JwksServer
) -> None:
    # An entry with only `jwks` (Epic's key pinned); Epic's JWTs still carry their jku.
    clients = write_clients(
        tmp_path / "trusted-clients.json",
        [{"iss": RSA_ISSUER, "jwks": {"keys": [rsa_signer.jwk()]}}],
    )
    client = create_app(Settings(trusted_clients=clients, public_base_url=BASE)).test_client()
    jku = jwks_server.url("/epic/PublicKeys/jwks.json")
    token = rsa_signer.token(header={"jku": jku})
    response = client.get(DISCOVERY, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    assert jwks_server.hits == {}
    # A kid that is not pinned still needs a listed jku: nothing is fetched.
    other = rsa_signer.token(header={"jku": jku, "kid": "not-pinned"})
    refused(client.get(DISCOVERY, headers=bearer(other)), "jku_not_allowed")
    assert jwks_server.hits == {}


def test_a_wrong_audience_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    client = auth_client()
    # A token minted for discovery is no good for a service call, and one for another host
    # is no good here.
    for aud in (BASE + DISCOVERY, "https://other.example.org" + SERVICE):
        token = ec_signer.token(SERVICE, aud=aud)
        response = client.post(SERVICE, json={}, headers=bearer(token))
        message = refused(response, "bad_audience")
        assert BASE + SERVICE in message


def test_aud_as_an_array_is_accepted_only_when_it_holds_this_endpoint(
    auth_client: AuthApp, ec_signer: Signer
) -> None:
    client = auth_client()
    holding = ec_signer.token(aud=["https://other.example.org/cds-services", BASE + DISCOVERY])
    assert client.get(DISCOVERY, headers=bearer(holding)).status_code == 200
    lacking = ec_signer.token(aud=["https://other.example.org/cds-services", BASE + SERVICE])
    refused(client.get(DISCOVERY, headers=bearer(lacking)), "bad_audience")


def test_the_audience_follows_the_public_base_url(auth_client: AuthApp, ec_signer: Signer) -> None:
    client = auth_client(public_base_url="https://cds.example.org/cytokine/")
    public = ec_signer.token(aud="https://cds.example.org/cytokine/cds-services")
    assert client.get(DISCOVERY, headers=bearer(public)).status_code == 200
    internal = ec_signer.token(aud=BASE + DISCOVERY)
    refused(client.get(DISCOVERY, headers=bearer(internal)), "bad_audience")


def test_a_trailing_slash_on_the_audience_is_tolerated(
    auth_client: AuthApp, ec_signer: Signer
) -> None:
    token = ec_signer.token(aud=BASE + DISCOVERY + "/")
    assert auth_client().get(DISCOVERY, headers=bearer(token)).status_code == 200


def test_a_trailing_slash_on_the_path_keeps_the_endpoint_audience(
    auth_client: AuthApp, ec_signer: Signer
) -> None:
    token = ec_signer.token(aud=BASE + DISCOVERY)
    assert auth_client().get(DISCOVERY + "/", headers=bearer(token)).status_code == 200


def test_an_expired_token_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    now = int(time.time())
    token = ec_signer.token(iat=now - 400, exp=now - 100)  # beyond the 60 s leeway
    refused(auth_client().get(DISCOVERY, headers=bearer(token)), "expired")


def test_clock_skew_within_the_leeway_is_accepted(auth_client: AuthApp, ec_signer: Signer) -> None:
    now = int(time.time())
    client = auth_client(jwt_leeway_seconds=30)
    late = ec_signer.token(iat=now - 300, exp=now - 10)
    assert client.get(DISCOVERY, headers=bearer(late)).status_code == 200
    early = ec_signer.token(iat=now + 10, exp=now + 300)
    assert client.get(DISCOVERY, headers=bearer(early)).status_code == 200
    too_late = ec_signer.token(iat=now - 300, exp=now - 40)
    refused(client.get(DISCOVERY, headers=bearer(too_late)), "expired")


def test_iat_in_the_future_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    now = int(time.time())
    token = ec_signer.token(iat=now + 600, exp=now + 900)
    refused(auth_client().get(DISCOVERY, headers=bearer(token)), "iat_in_future")


def test_a_lifetime_over_the_maximum_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    now = int(time.time())
    long_lived = ec_signer.token(iat=now, exp=now + 3601)
    message = refused(auth_client().get(DISCOVERY, headers=bearer(long_lived)), "lifetime_too_long")
    assert "3601" in message
    strict = auth_client(jwt_max_lifetime_seconds=300)
    five_minutes = ec_signer.token(iat=now, exp=now + 300)
    assert strict.get(DISCOVERY, headers=bearer(five_minutes)).status_code == 200
    refused(
        strict.get(DISCOVERY, headers=bearer(ec_signer.token(iat=now, exp=now + 301))),
        "lifetime_too_long",
    )


@pytest.mark.parametrize("claim", ["jti", "iss", "aud", "exp", "iat"])
def test_a_missing_required_claim_is_refused(
    auth_client: AuthApp, ec_signer: Signer, claim: str
) -> None:
    token = ec_signer.token(**{claim: ...})
    message = refused(auth_client().get(DISCOVERY, headers=bearer(token)), "missing_claim")
    assert f"`{claim}`" in message


def test_a_replayed_jti_is_refused(
    auth_client: AuthApp, ec_signer: Signer, rsa_signer: Signer
) -> None:
    client = auth_client()
    jti = str(uuid.uuid4())
    token = ec_signer.token(jti=jti)
    assert client.get(DISCOVERY, headers=bearer(token)).status_code == 200
    refused(client.get(DISCOVERY, headers=bearer(token)), "replayed")
    # The same jti in a new token of the same issuer is a replay too.
    refused(client.get(DISCOVERY, headers=bearer(ec_signer.token(jti=jti))), "replayed")
    # Another issuer may happen to use the same jti value: replay is per issuer.
    assert client.get(DISCOVERY, headers=bearer(rsa_signer.token(jti=jti))).status_code == 200


def test_a_rotated_key_with_a_new_kid_is_fetched_and_accepted(
    auth_client: AuthApp, ec_signer: Signer, jwks_server: JwksServer
) -> None:
    # Refresh interval 0 so the rotation is seen at once (the rate limit is tested in
    # test_jwks_cache.py).
    client = auth_client(jwks_refresh_min_interval_seconds=0)
    assert client.get(DISCOVERY, headers=bearer(ec_signer.token())).status_code == 200
    assert jwks_server.hits == {"/ehr/jwks.json": 1}

    rotated = Signer(ec.generate_private_key(ec.SECP384R1()), "ec-key-2", "ES384")
    rotated.jku = ec_signer.jku
    jwks_server.publish("/ehr/jwks.json", [ec_signer.jwk(), rotated.jwk()])
    assert client.get(DISCOVERY, headers=bearer(rotated.token())).status_code == 200
    assert jwks_server.hits == {"/ehr/jwks.json": 2}, "one refresh for the unknown kid"
    # Both keys are now cached: no further fetch.
    assert client.get(DISCOVERY, headers=bearer(ec_signer.token())).status_code == 200
    assert client.get(DISCOVERY, headers=bearer(rotated.token())).status_code == 200
    assert jwks_server.hits == {"/ehr/jwks.json": 2}


def test_tenants_are_enforced_when_listed(
    auth_client: AuthApp, trusted_clients: Any, ec_signer: Signer
) -> None:
    write_clients(trusted_clients, [{"iss": ISSUER, "jku": [ec_signer.jku], "tenants": ["a"]}])
    client = auth_client()
    assert client.get(DISCOVERY, headers=bearer(ec_signer.token(tenant="a"))).status_code == 200
    message = refused(
        client.get(DISCOVERY, headers=bearer(ec_signer.token(tenant="b"))),
        "tenant_not_allowed",
        status=403,
    )
    assert "'b'" in message
    assert (
        'error="insufficient_scope"'
        in client.get(DISCOVERY, headers=bearer(ec_signer.token())).headers["WWW-Authenticate"]
    )


def test_nothing_of_the_token_is_logged_or_echoed(
    auth_client: AuthApp, ec_signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    client = auth_client()
    caplog.set_level(logging.DEBUG)
    good = ec_signer.token()
    expired = ec_signer.token(iat=int(time.time()) - 900, exp=int(time.time()) - 600)
    bad_aud = ec_signer.token(aud="https://other.example.org/cds-services")
    responses = [client.get(DISCOVERY, headers=bearer(t)) for t in (good, expired, bad_aud)]
    assert [r.status_code for r in responses] == [200, 401, 401]
    assert "refused" in caplog.text
    for token in (good, expired, bad_aud):
        for part in token.split("."):
            assert part not in caplog.text
            for response in responses:
                assert part not in response.get_data(as_text=True)
                assert part not in str(response.headers)
