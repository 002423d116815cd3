"""`cytokine-cds load-fixtures`: the fixture patients onto a real FHIR server, repeatably."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service import create_app
from cds_service.demo import FIXTURE_TIME
from cds_service.evidence.times import parse_fhir_datetime
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
    assert "loaded fixtures/patients/fhir-access-demo.json: 9 Observation, 1 Patient" in (
        result.stdout
    )
    # PUT with fixed ids: a second upload replaces, it does not add copies.
    assert observation_count(fhir_server, "fhir-access-demo") == before == 9
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


def readme_walkthrough_call() -> dict[str, Any]:
    """The request of the README's sandbox walkthrough, step 5 (the curl without prefetch)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    steps = readme[readme.index("### Trying it in the CDS Hooks sandbox") :]
    match = re.search(r"-d '(\{.*?\})'", steps, re.DOTALL)
    assert match is not None, "the walkthrough's curl request is gone"
    return dict(json.loads(match.group(1)))


def test_dates_moved_to_now_make_the_sandbox_walkthrough_show_cards(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The README's walkthrough: fixtures loaded onto a FHIR server, its call without prefetch.
    With their original dates every result is past its window ("No recommendations"); moved
    to now, the patient's pattern card shows, and no result lands in the future."""
    walkthrough = readme_walkthrough_call()
    assert walkthrough["context"]["patientId"] == "fhir-access-demo"
    binary = sekmet_binary(Path(request.config.cache.mkdir("fhir-test-server")))
    with sekmet(binary, tmp_path) as fhir:
        app = create_app(Settings(auth="off", fhir_allowlist=[fhir], data_dir=tmp_path / "d"))
        topics: dict[str, list[list[str]]] = {}
        for args in ((), ("--dates-to-now",)):
            result = load_fixtures("--fhir-server", fhir, *args)
            assert result.returncode == 0, result.stderr
            for patient in ("css-il6-covid", "fhir-access-demo"):
                body = copy.deepcopy(walkthrough)
                body["fhirServer"] = fhir
                body["context"]["patientId"] = patient
                response = app.test_client().post(
                    "/cds-services/cytokine-storm-patient-view", json=body
                )
                assert response.status_code == 200, response.get_json()
                cards = response.get_json()["cards"]
                topics.setdefault(patient, []).append([c["source"]["topic"]["code"] for c in cards])
    assert topics == {"css-il6-covid": [[], ["il6driven"]], "fhir-access-demo": [[], ["il6driven"]]}


def test_no_fixture_result_is_dated_after_the_fixture_time() -> None:
    """Dates are moved by (now - FIXTURE_TIME): a later date would land in the future and its
    result would not count. lab-edge-cases holds one such result on purpose."""
    late = {}
    for path in sorted((ROOT / "fixtures" / "patients").glob("*.json")):
        if path.name == "lab-edge-cases.json":
            continue
        times = re.findall(r'"(\d{4}-\d\d-\d\dT[^"]+)"', path.read_text(encoding="utf-8"))
        after = [t for t in times if parse_fhir_datetime(t) > FIXTURE_TIME]  # type: ignore[operator]
        if after:
            late[path.name] = after
    assert late == {}
