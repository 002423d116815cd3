"""A refused call's log line names the route pattern, never the raw path (it may hold anything,
such as a patient id a client put in a mistyped URL), nor the token."""

from __future__ import annotations

import logging

import pytest

from tests.auth.conftest import AuthApp, Signer, bearer

RAW_PATHS = [
    "/cds-services/Patient/MRN-884213/name-Doe",  # no route: "<unmatched>"
    "/cds-services/MRN-884213",  # the service route, with an id that is not a service
    "/cds-services/MRN-884213/feedback",
    # A trailing slash reaches the same routes: it must not slip past the redaction.
    "/cds-services/Patient/MRN-884213/name-Doe/",
    "/cds-services/MRN-884213/",
    "/cds-services/MRN-884213/feedback/",
]


@pytest.mark.parametrize("raw_path", RAW_PATHS)
def test_refused_calls_log_the_route_pattern_not_the_path(
    auth_client: AuthApp, ec_signer: Signer, caplog: pytest.LogCaptureFixture, raw_path: str
) -> None:
    client = auth_client()
    token = ec_signer.token(raw_path, aud="https://elsewhere.example.org" + raw_path)
    with caplog.at_level(logging.INFO):
        assert client.post(raw_path, json={}).status_code == 401
        assert client.get(raw_path, headers=bearer(token)).status_code == 401
        assert client.open(raw_path, method="MRN-884213").status_code == 401
    refusals = [r.getMessage() for r in caplog.records if "client refused" in r.getMessage()]
    assert len(refusals) == 3
    for line in refusals:
        assert "<unmatched>" in line or "<service_id>" in line
    assert "884213" not in caplog.text
    assert token not in caplog.text


def test_a_known_service_path_is_logged_as_it_is(
    auth_client: AuthApp, caplog: pytest.LogCaptureFixture
) -> None:
    path = "/cds-services/cytokine-storm-patient-view"
    with caplog.at_level(logging.INFO):
        assert auth_client().post(path, json={}).status_code == 401
    assert f"POST {path}: missing_token" in caplog.text
