"""Start-up rules: auth is on unless turned off explicitly; off means loopback only and a
warning; a bad trusted-clients file or algorithm list stops start-up with a message."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from cds_service import create_app
from cds_service.auth import AuthConfigError
from cds_service.composition import check_bind
from cds_service.settings import Settings
from tests.servers import cytokine_cds


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.5", "localhost", "::1", "[::1]"])
def test_auth_off_may_serve_on_loopback(host: str) -> None:
    check_bind(Settings(auth="off"), host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "cds.hospital.example", ""])
def test_auth_off_refuses_a_non_loopback_address(host: str) -> None:
    with pytest.raises(AuthConfigError, match="CYTOKINE_CDS_AUTH_OFF_ALLOW_NON_LOOPBACK"):
        check_bind(Settings(auth="off"), host)


def test_auth_off_on_a_non_loopback_address_needs_the_second_setting() -> None:
    check_bind(Settings(auth="off", auth_off_allow_non_loopback=True), "0.0.0.0")


def test_auth_on_may_serve_anywhere(tmp_path: Path) -> None:
    check_bind(Settings(), "0.0.0.0")


def test_auth_is_on_by_default_and_needs_a_trusted_clients_file() -> None:
    assert Settings().auth == "on"
    with pytest.raises(AuthConfigError, match="CYTOKINE_CDS_TRUSTED_CLIENTS"):
        create_app(Settings())


def test_auth_off_logs_a_warning_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(Settings(auth="OFF"))  # type: ignore[arg-type]
    assert "NOT authenticated" in caplog.text


def test_auth_on_without_a_public_base_url_refuses_to_start(tmp_path: Path) -> None:
    """The JWT audience never comes from the request's Host header: without the public base
    URL, start-up stops and names the setting, unless every client lists its audiences."""
    clients = tmp_path / "c.json"
    clients.write_text(json.dumps({"clients": [{"iss": "x", "jku": ["https://x.example/k"]}]}))
    with pytest.raises(AuthConfigError, match="CYTOKINE_CDS_PUBLIC_BASE_URL is not set"):
        create_app(Settings(trusted_clients=clients))
    create_app(Settings(trusted_clients=clients, public_base_url="https://cds.example"))
    bound = {"iss": "x", "jku": ["https://x.example/k"], "audiences": ["https://cds.example/a"]}
    clients.write_text(json.dumps({"clients": [bound]}))
    create_app(Settings(trusted_clients=clients))


@pytest.mark.parametrize("value", ["HS256", "none", "ES384,HS512", ""])
def test_symmetric_or_no_algorithms_are_refused_as_settings(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CYTOKINE_CDS_JWT_ALGORITHMS", value)
    with pytest.raises(ValidationError, match="jwt_algorithms"):
        Settings()


def test_algorithms_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYTOKINE_CDS_JWT_ALGORITHMS", "ES384, RS384")
    assert Settings().jwt_algorithms == ["ES384", "RS384"]


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A host under the reserved .invalid domain: were a start-up check missing, gunicorn could
    # not resolve it, so nothing is ever bound or reached.
    return cytokine_cds("serve", "--host", "cds.invalid", env={"PATH": "", **env})


def test_an_invalid_trusted_clients_file_stops_serve_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "trusted.json"
    bad.write_text(
        json.dumps({"clients": [{"iss": "https://ehr.example", "jku": ["http://ehr.invalid/k"]}]})
    )
    result = _serve({"CYTOKINE_CDS_TRUSTED_CLIENTS": str(bad)})
    assert result.returncode != 0
    assert "CYTOKINE_CDS_TRUSTED_CLIENTS" in result.stderr
    assert str(bad) in result.stderr
    assert "http://ehr.invalid/k" in result.stderr and "https" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_without_trusted_clients_stops_with_a_message() -> None:
    result = _serve({})
    assert result.returncode != 0
    assert "CYTOKINE_CDS_TRUSTED_CLIENTS" in result.stderr
    assert "CYTOKINE_CDS_AUTH=off" in result.stderr


def test_serve_with_auth_off_refuses_a_non_loopback_host() -> None:
    result = _serve({"CYTOKINE_CDS_AUTH": "off"})
    assert result.returncode != 0
    assert "CYTOKINE_CDS_AUTH_OFF_ALLOW_NON_LOOPBACK" in result.stderr


def test_a_client_whose_algorithms_are_all_disabled_stops_start_up(tmp_path: Path) -> None:
    clients = tmp_path / "c.json"
    client = {"iss": "https://ehr.example", "jku": ["https://ehr.example/k"]}
    clients.write_text(json.dumps({"clients": [{**client, "algorithms": ["RS384"]}]}))
    with pytest.raises(AuthConfigError, match=r"https://ehr\.example' allows only RS384"):
        create_app(Settings(trusted_clients=clients, jwt_algorithms=["ES384"]))  # type: ignore[arg-type]
