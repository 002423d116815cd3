"""`cytokine-cds screen <FHIR base URL>`: a Bulk Data $export round trip against the sekmet
server the suite starts (loaded with fixtures/patients), and the server policy on its URLs.

sekmet 0.1.1 runs $export for real: kick-off with `Prefer: respond-async` -> 202 and a status URL,
202 with X-Progress while it runs, then the manifest; one NDJSON file per type; Group level too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from tests.fault_server import fault_server
from tests.fhir_server import fixture_patient_ids
from tests.screening.conftest import EXPECTED_CARDS, screen
from tests.servers import free_port


@pytest.fixture
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYTOKINE_CDS_FHIR_ALLOW_LOOPBACK", "true")


def test_system_export_is_downloaded_and_screened(
    fhir_server: str, loopback_allowed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = screen(capsys, fhir_server, tmp_path / "out.ndjson", "--workers", "1")
    assert run.code == 0, run.stderr
    assert "exported " in run.stderr
    screened = re.search(r"screened (\d+) patients", run.stderr)
    assert screened, run.stderr
    # Every fixture patient at least: other tests of the session may have added more.
    assert int(screened.group(1)) >= len(fixture_patient_ids())
    listed = {row["patient"]: row["card_types"] for row in run.rows()}
    for name, cards in EXPECTED_CARDS.items():
        assert listed.get(name, []) == cards, name


def test_group_export_screens_only_the_groups_members(
    fhir_server: str, loopback_allowed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = {
        "resourceType": "Group",
        "id": "screening-ward",
        "type": "person",
        "actual": True,
        "member": [
            {"entity": {"reference": "Patient/css-il6-covid"}},
            {"entity": {"reference": "Patient/css-no-inflammation"}},
        ],
    }
    response = requests.put(f"{fhir_server}/Group/screening-ward", json=group, timeout=10)
    assert response.status_code in (200, 201), response.text
    run = screen(
        capsys, fhir_server, tmp_path / "out.ndjson", "--workers", "1", "--group", "screening-ward"
    )
    assert run.code == 0, run.stderr
    assert "screened 2 patients" in run.stderr
    assert [row["patient"] for row in run.rows()] == ["css-il6-covid"]


def test_an_unknown_group_exits_2_with_the_servers_answer(
    fhir_server: str, loopback_allowed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = screen(capsys, fhir_server, tmp_path / "o.ndjson", "--group", "no-such-group")
    assert run.code == 2
    assert "$export kick-off" in run.stderr and "HTTP 404" in run.stderr


def test_an_unreachable_server_exits_1_as_load_fixtures_does(
    loopback_allowed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No server listening is an operational failure (exit 1), not bad input (exit 2)."""
    run = screen(capsys, f"http://127.0.0.1:{free_port()}/fhir", tmp_path / "o.ndjson")
    assert run.code == 1, run.stderr
    assert "could not be reached" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("server", "setting"),
    [
        ("https://ehr.invalid/fhir", "CYTOKINE_CDS_FHIR_ALLOWLIST"),
        ("http://ehr.invalid/fhir", "CYTOKINE_CDS_FHIR_ALLOW_HTTP"),
    ],
)
def test_a_server_off_the_allowlist_is_refused_before_any_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: str, setting: str
) -> None:
    run = screen(capsys, server, tmp_path / "o.ndjson")
    assert run.code == 2
    assert setting in run.stderr
    assert "could not be reached" not in run.stderr  # refused, not tried


def test_loopback_is_refused_unless_allowed(
    fhir_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = screen(capsys, fhir_server, tmp_path / "o.ndjson")
    assert run.code == 2
    assert "CYTOKINE_CDS_FHIR_ALLOWLIST" in run.stderr


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_or_failing_server_at_kick_off_exits_1(
    loopback_allowed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    """A kick-off answered 429 (busy: try later) or 5xx is an operational failure (exit 1), not
    bad input (exit 2). sekmet never answers so: the fault server does."""
    with fault_server() as server:
        run = screen(capsys, server.url(f"status-{status}"), tmp_path / "o.ndjson")
        assert [path for path in server.paths(f"status-{status}") if "$export" in path]
    assert run.code == 1, run.stderr
    assert "$export kick-off" in run.stderr and f"HTTP {status}" in run.stderr
    assert "Traceback" not in run.stderr
