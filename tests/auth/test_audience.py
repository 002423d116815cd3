"""Where the JWT audience comes from, per-client expectations (`audiences`, `sub`), `nbf`, and
NumericDate claims: real keys and signed tokens through the Flask test client."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app
from cds_service.api.runtime import current_runtime
from cds_service.demo import hook_request
from cds_service.settings import Settings
from tests.auth.conftest import (
    BASE,
    DISCOVERY,
    FEEDBACK,
    FEEDBACK_BODY,
    ISSUER,
    SERVICE,
    AuthApp,
    JwksServer,
    Signer,
    bearer,
    refused,
    write_clients,
)
from tests.conftest import load_fixture


def test_the_host_header_never_chooses_the_audience(
    auth_client: AuthApp, ec_signer: Signer
) -> None:
    """A token the EHR signed for another CDS service stays refused when the request claims
    that service's host (and https via X-Forwarded-Proto)."""
    client = auth_client()
    other = "https://other-cds.example.org"
    token = ec_signer.token(SERVICE, aud=other + SERVICE)
    spoofed = {"Host": "other-cds.example.org", "X-Forwarded-Proto": "https", **bearer(token)}
    response = client.get(DISCOVERY, headers=spoofed)
    message = refused(response, "bad_audience")
    assert other not in message.split("accepted:")[1]
    assert BASE + DISCOVERY in message


def test_feedback_accepts_its_services_url_as_audience(
    auth_client: AuthApp, ec_signer: Signer
) -> None:
    """Epic signs feedback with the audience typed in for the service."""
    client = auth_client()
    for aud in (BASE + FEEDBACK, BASE + SERVICE):
        token = ec_signer.token(FEEDBACK, aud=aud)
        response = client.post(FEEDBACK, json=FEEDBACK_BODY, headers=bearer(token))
        assert response.status_code != 401, response.get_json()
    # ...but a service-call audience is no good for discovery, nor for another service.
    token = ec_signer.token(DISCOVERY, aud=BASE + SERVICE)
    refused(client.get(DISCOVERY, headers=bearer(token)), "bad_audience")
    other_feedback = "/cds-services/cytokine-storm-order-sign/feedback"
    token = ec_signer.token(other_feedback, aud=BASE + SERVICE)
    response = client.post(other_feedback, json=FEEDBACK_BODY, headers=bearer(token))
    refused(response, "bad_audience")


def clients_file(tmp_path: Path, ec_signer: Signer, jwks: JwksServer, **entry: Any) -> Path:
    jwks.publish("/ehr/jwks.json", [ec_signer.jwk()])
    return write_clients(
        tmp_path / "trusted-clients.json", [{"iss": ISSUER, "jku": [ec_signer.jku], **entry}]
    )


def test_configured_audiences_are_the_only_ones_accepted(
    tmp_path: Path, ec_signer: Signer, jwks_server: JwksServer
) -> None:
    # As the analyst typed it into the EHR, behind a proxy path.
    typed_in = "https://cds.hospital.example/cytokine" + DISCOVERY
    path = clients_file(tmp_path, ec_signer, jwks_server, audiences=[typed_in])
    # No public base URL needed: every client says which audiences it signs for.
    client = create_app(Settings(trusted_clients=path)).test_client()
    accepted = client.get(DISCOVERY, headers=bearer(ec_signer.token(aud=typed_in)))
    assert accepted.status_code == 200, accepted.get_json()
    for aud in (BASE + DISCOVERY, "https://cds.hospital.example/other"):
        message = refused(
            client.get(DISCOVERY, headers=bearer(ec_signer.token(aud=aud))), "bad_audience"
        )
        assert typed_in in message


def test_a_configured_audience_is_accepted_only_on_the_endpoint_it_names(
    tmp_path: Path, ec_signer: Signer, jwks_server: JwksServer
) -> None:
    """CDS Hooks: `aud` "MUST be the URL of the CDS Service endpoint being invoked"."""
    typed_in = "https://cds.hospital.example/cytokine" + SERVICE  # the patient-view service
    path = clients_file(tmp_path, ec_signer, jwks_server, audiences=[typed_in])
    client = create_app(Settings(trusted_clients=path)).test_client()

    def call(endpoint: str) -> Any:
        token = bearer(ec_signer.token(endpoint, aud=typed_in))
        if endpoint == DISCOVERY:
            return client.get(endpoint, headers=token)
        body = FEEDBACK_BODY if endpoint.endswith("/feedback") else {}
        return client.post(endpoint, json=body, headers=token)

    assert call(SERVICE).status_code != 401  # reaches the service (400: an empty body)
    assert call(FEEDBACK).status_code == 200  # Epic: the service's audience on its feedback
    order_sign = "/cds-services/cytokine-storm-order-sign"
    for endpoint in (order_sign, order_sign + "/feedback", DISCOVERY, "/evaluate"):
        message = refused(call(endpoint), "bad_audience")
        assert endpoint in message and "trusted-clients" in message


def test_an_expected_sub_is_enforced(
    tmp_path: Path, ec_signer: Signer, jwks_server: JwksServer
) -> None:
    path = clients_file(tmp_path, ec_signer, jwks_server, sub="cds-client-id-4711")
    client = create_app(Settings(trusted_clients=path, public_base_url=BASE)).test_client()
    good = ec_signer.token(sub="cds-client-id-4711")
    assert client.get(DISCOVERY, headers=bearer(good)).status_code == 200
    for sub in ("someone-else", ...):
        message = refused(
            client.get(DISCOVERY, headers=bearer(ec_signer.token(sub=sub))), "bad_subject"
        )
        assert "someone-else" not in message and "cds-client-id-4711" not in message


def test_nbf_in_the_future_is_refused(auth_client: AuthApp, ec_signer: Signer) -> None:
    client = auth_client()
    now = int(time.time())
    epic_like = ec_signer.token(nbf=now - 300, exp=now + 300)  # Epic: nbf 5 minutes before iat
    assert client.get(DISCOVERY, headers=bearer(epic_like)).status_code == 200
    later = ec_signer.token(nbf=now + 600, exp=now + 900)
    message = refused(client.get(DISCOVERY, headers=bearer(later)), "iat_in_future")
    assert "nbf" in message


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_numeric_strings_are_not_numeric_dates(
    auth_client: AuthApp, ec_signer: Signer, claim: str
) -> None:
    """RFC 7519 §2: NumericDate is a JSON number; "1700000000" is a string."""
    client = auth_client()
    now = int(time.time())
    value = {"exp": now + 300, "iat": now, "nbf": now - 10}[claim]
    token = ec_signer.token(**{claim: str(value)})
    message = refused(client.get(DISCOVERY, headers=bearer(token)), "invalid_claim")
    assert f"`{claim}`" in message and "JSON number" in message
    for odd in (True, [value], {"n": value}):
        refused(
            client.get(DISCOVERY, headers=bearer(ec_signer.token(**{claim: odd}))), "invalid_claim"
        )


def test_the_localhost_and_127_mix_up_is_explained(
    tmp_path: Path, ec_signer: Signer, jwks_server: JwksServer
) -> None:
    path = clients_file(tmp_path, ec_signer, jwks_server)
    client = create_app(
        Settings(trusted_clients=path, public_base_url="http://127.0.0.1:8080")
    ).test_client()
    token = ec_signer.token(aud="http://localhost:8080/cds-services")  # the sandbox on localhost
    message = refused(client.get(DISCOVERY, headers=bearer(token)), "bad_audience")
    assert "localhost and 127.0.0.1 are different audiences" in message
    assert "CYTOKINE_CDS_PUBLIC_BASE_URL" in message


def test_profile_links_never_use_the_host_header(tmp_path: Path) -> None:
    app = create_app(Settings(auth="off", port=8123, data_dir=tmp_path / "data"))
    with app.app_context():
        service = current_runtime().services["cytokine-storm-patient-view"]
    body = hook_request(service, load_fixture("patients/css-il6-covid.json"), now=datetime.now(UTC))
    with app.test_client() as client:
        response = client.post(
            f"/cds-services/{service.id}",
            json=body,
            headers={"Host": "evil.invalid", "X-Forwarded-Host": "evil.invalid"},
        )
    assert response.status_code == 200, response.get_json()
    (card,) = response.get_json()["cards"]
    (link,) = card["links"]
    assert link["url"].startswith("http://127.0.0.1:8123/profile/")


def test_no_profile_links_on_a_wildcard_bind_without_a_public_base_url(
    tmp_path: Path, ec_signer: Signer, jwks_server: JwksServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Authentication on, every client with its `audiences`, no public base URL, and the
    service bound to 0.0.0.0: a link to http://0.0.0.0:8080/profile/... opens nothing."""
    typed_in = "https://cds.hospital.example" + SERVICE
    path = clients_file(tmp_path, ec_signer, jwks_server, audiences=[typed_in])

    def cards(**settings: Any) -> list[dict[str, Any]]:
        app = create_app(Settings(trusted_clients=path, host="0.0.0.0", **settings))
        with app.app_context():
            service = current_runtime().services["cytokine-storm-patient-view"]
        patient = load_fixture("patients/css-il6-covid.json")
        body = hook_request(service, patient, now=datetime.now(UTC))
        token = bearer(ec_signer.token(SERVICE, aud=typed_in))
        response = app.test_client().post(SERVICE, json=body, headers=token)
        assert response.status_code == 200, response.get_json()
        return list(response.get_json()["cards"])

    with caplog.at_level(logging.WARNING):
        dropped = cards()
    assert dropped and not any("links" in card for card in dropped)
    warned = [
        r.getMessage() for r in caplog.records if "profile page links are off" in r.getMessage()
    ]
    assert len(warned) == 1 and "0.0.0.0" in warned[0]
    assert "CYTOKINE_CDS_PUBLIC_BASE_URL" in warned[0]
    # With the public base URL, the links are on it.
    (card,) = cards(public_base_url="https://cds.hospital.example")
    assert card["links"][0]["url"].startswith("https://cds.hospital.example/profile/")
