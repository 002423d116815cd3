"""A round trip through `cytokine-cds serve`: a real gunicorn process on 127.0.0.1."""

from __future__ import annotations

import requests

from tests.conftest import load_fixture
from tests.servers import cds_service, cytokine_cds


def test_served_by_gunicorn_end_to_end() -> None:
    with cds_service() as base:
        discovery = requests.get(f"{base}/cds-services", timeout=5)
        assert discovery.status_code == 200
        assert discovery.headers["Server"].startswith("gunicorn")
        services = {s["id"]: s for s in discovery.json()["services"]}
        assert len(services) == 3

        answer = requests.post(
            f"{base}/cds-services/cytokine-storm-patient-view",
            json=load_fixture("hooks/patient-view.json"),
            timeout=5,
        )
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/json"
        assert "cards" in answer.json()

        bad = requests.post(
            f"{base}/cds-services/cytokine-storm-patient-view",
            data="{",
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert bad.status_code == 400
        assert bad.json()["resourceType"] == "OperationOutcome"


def test_invalid_setting_stops_start_up_with_a_message() -> None:
    result = cytokine_cds("serve", env={"CYTOKINE_CDS_PORT": "not-a-port", "PATH": ""}, timeout=30)
    assert result.returncode != 0
    assert "CYTOKINE_CDS_PORT" in result.stderr
