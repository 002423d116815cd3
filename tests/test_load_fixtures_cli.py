"""`cytokine-cds load-fixtures`: the fixture patients onto a real FHIR server, repeatably."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import requests

from tests.fhir_server import ROOT
from tests.servers import BIN, free_port


def load_fixtures(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "cytokine-cds"), "load-fixtures", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def observation_count(fhir_server: str, patient: str) -> int:
    bundle = requests.get(f"{fhir_server}/Observation?patient={patient}", timeout=5).json()
    return int(bundle["total"])


def test_loads_every_fixture_bundle_and_can_be_run_again(fhir_server: str) -> None:
    before = observation_count(fhir_server, "fhir-access-demo")
    result = load_fixtures("--fhir-server", fhir_server)
    assert result.returncode == 0, result.stderr
    assert "loaded fixtures/patients/fhir-access-demo.json: 8 Observation, 1 Patient" in (
        result.stdout
    )
    # PUT with fixed ids: a second upload replaces, it does not add copies.
    assert observation_count(fhir_server, "fhir-access-demo") == before == 8
    patient = requests.get(f"{fhir_server}/Patient/fhir-access-demo", timeout=5)
    assert patient.status_code == 200


def test_refuses_bundles_that_would_duplicate_data(tmp_path: Path, fhir_server: str) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "id": "p"},
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    path = tmp_path / "post.json"
    path.write_text(json.dumps(bundle))
    result = load_fixtures("--fhir-server", fhir_server, str(path))
    assert result.returncode == 1
    assert "entry 1 must be 'PUT Patient/p'" in result.stderr


def test_reports_an_unreachable_server(tmp_path: Path) -> None:
    result = load_fixtures("--fhir-server", f"http://127.0.0.1:{free_port()}/fhir")
    assert result.returncode == 1
    assert "could not be reached" in result.stderr
