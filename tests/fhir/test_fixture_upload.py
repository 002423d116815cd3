"""`cytokine-cds load-fixtures`: the fixture patients onto a real FHIR server, repeatably."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests

from cds_service import create_app
from cds_service.settings import Settings
from tests.fhir_server import ROOT, sekmet, sekmet_binary
from tests.servers import cytokine_cds, free_port


def load_fixtures(*args: str) -> subprocess.CompletedProcess[str]:
    return cytokine_cds("load-fixtures", *args, cwd=ROOT)


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


def test_dates_moved_to_now_make_the_sandbox_walkthrough_show_cards(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The README's walkthrough: fixtures loaded onto a FHIR server, a call without prefetch.
    With their original dates every result is past its window ("No recommendations"); moved
    to now, the patient's pattern card shows."""
    binary = sekmet_binary(Path(request.config.cache.mkdir("fhir-test-server")))
    with sekmet(binary, tmp_path) as fhir:
        app = create_app(Settings(auth="off", fhir_allowlist=[fhir], data_dir=tmp_path / "d"))
        body = {
            "hook": "patient-view",
            "hookInstance": "7f1b2c3d-0000-4000-8000-000000000001",
            "fhirServer": fhir,
            "context": {"userId": "Practitioner/example", "patientId": "css-il6-covid"},
        }
        topics = []
        for args in ((), ("--dates-to-now",)):
            result = load_fixtures("--fhir-server", fhir, *args)
            assert result.returncode == 0, result.stderr
            response = app.test_client().post(
                "/cds-services/cytokine-storm-patient-view", json=body
            )
            assert response.status_code == 200, response.get_json()
            topics.append([c["source"]["topic"]["code"] for c in response.get_json()["cards"]])
    assert topics == [[], ["il6driven"]]
