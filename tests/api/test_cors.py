"""CORS: browser clients (the CDS Hooks sandbox) preflight every call with Authorization."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.settings import Settings

ORIGIN = "http://localhost:3000"
PATHS = [
    ("/cds-services", "GET", "authorization"),
    ("/cds-services/cytokine-storm-patient-view", "POST", "authorization, content-type"),
    ("/cds-services/cytokine-storm-order-sign/feedback", "POST", "authorization, content-type"),
]


@pytest.mark.parametrize(("path", "method", "headers"), PATHS)
def test_preflight_allows_authorization_and_content_type(
    client: FlaskClient, path: str, method: str, headers: str
) -> None:
    response = client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    assert method in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    for header in headers.split(", "):
        assert header in allowed


def test_error_responses_carry_cors_headers(client: FlaskClient) -> None:
    response = client.post(
        "/cds-services/cytokine-storm-patient-view",
        data="{",
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)


def test_allowed_origins_are_configurable() -> None:
    app = create_app(Settings(cors_origins="https://ehr.example.org", auth="off"))  # type: ignore[arg-type]
    client = app.test_client()
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    other = client.get("/cds-services", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
