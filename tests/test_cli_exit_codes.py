"""The command line's exit codes as documented: 2 for bad input, with a message naming it (and a
hint that works when followed), 1 only for an operational failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cds_service.cli import main
from tests.conftest import FIXTURES
from tests.servers import cytokine_cds

PATIENT = str(FIXTURES / "patients" / "css-il6-covid.json")


@pytest.mark.parametrize("given", ["2026-11-20", "2026-11-20Z", "2026-11-20T12:00"])
def test_a_time_without_zone_gets_a_hint_that_works(
    capsys: pytest.CaptureFixture[str], given: str
) -> None:
    assert main(["evaluate", PATIENT, "--at", given]) == 2
    error = capsys.readouterr().err
    assert "needs a zone, e.g. " in error
    hint = error.split("e.g. ", 1)[1].rsplit(": ", 1)[0]
    assert main(["evaluate", PATIENT, "--at", hint]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["cards"]


def _bundle(tmp_path: Path, bundle: dict[str, object]) -> str:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fhir-server", "http://127.0.0.2:9/fhir", "/nonexistent/fixtures"], "no such file"),
        (["--fhir-server", "http://127.0.0.2:9/fhir", "BUNDLE"], "Bundle.type must be"),
        (["--fhir-server", "ftp://x.invalid/fhir"], "not an http(s) URL"),
    ],
)
def test_load_fixtures_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    bundle = _bundle(tmp_path, {"resourceType": "Bundle", "type": "collection", "entry": []})
    args = [bundle if arg == "BUNDLE" else arg for arg in args]
    result = cytokine_cds("load-fixtures", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_ehr_setup_with_an_unreadable_trusted_clients_file_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "trusted-clients.json"
    broken.write_text("{not json")
    env = {**os.environ, "CYTOKINE_CDS_TRUSTED_CLIENTS": str(broken), "CYTOKINE_CDS_AUTH": "off"}
    result = cytokine_cds("ehr-setup", "--client", "epic", env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert str(broken) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("given", ["0001-01-05T00:00:00Z", "9999-12-31T23:59:59-12:00"])
def test_a_time_off_the_calendar_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], given: str
) -> None:
    assert main(["evaluate", PATIENT, "--at", given]) == 2
    assert "between the years 1900 and 2200" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("CYTOKINE_CDS_WORKERS", "0", "CYTOKINE_CDS_WORKERS"),
        ("CYTOKINE_CDS_LOG_LEVEL", "LOUD", "must be one of DEBUG, INFO"),
        ("CYTOKINE_CDS_DRUG_ORDERABLES", "{bad", "CYTOKINE_CDS_DRUG_ORDERABLES: not valid JSON"),
        ("CYTOKINE_CDS_DATABASE_URL", "garbage-secretpw", "is not a database URL"),
    ],
)
def test_a_setting_that_cannot_be_read_stops_a_command_with_its_name(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    variable: str,
    value: str,
    named: str,
) -> None:
    """Exit 2 and the variable named, before anything is opened; never a traceback, never
    the value of a database URL (it holds a password)."""
    monkeypatch.setenv("CYTOKINE_CDS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, value)
    assert main(["db", "current"]) == 2
    error = capsys.readouterr().err
    assert variable in error and named in error
    assert "secretpw" not in error and "Traceback" not in error


def test_a_bad_command_line_option_is_named_as_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --port 99999` names --port, not the variable the user did not set."""
    monkeypatch.delenv("CYTOKINE_CDS_PORT", raising=False)
    assert main(["serve", "--port", "99999"]) == 2
    error = capsys.readouterr().err
    assert "--port: " in error and "CYTOKINE_CDS_PORT" not in error
    monkeypatch.setenv("CYTOKINE_CDS_PORT", "99999")
    assert main(["serve"]) == 2
    assert "CYTOKINE_CDS_PORT: " in capsys.readouterr().err
