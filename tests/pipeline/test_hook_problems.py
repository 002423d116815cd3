"""Data problems met while reading prefetch reach the answer's evidence and the audit row."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient

from cds_service.api.runtime import current_runtime
from cds_service.demo import hook_request
from tests.conftest import load_fixture
from tests.store.helpers import stored_hook_calls


def test_a_prefetch_operation_outcome_is_recorded_with_the_audit_row(client: FlaskClient) -> None:
    with client.application.app_context():
        runtime = current_runtime()
    service = runtime.services["cytokine-storm-patient-view"]
    body = hook_request(service, load_fixture("patients/css-ifng-hlh.json"), now=datetime.now(UTC))
    body["prefetch"]["labs"]["entry"].append(
        {
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "warning", "code": "incomplete"}],
            },
            "search": {"mode": "outcome"},
        }
    )
    response = client.post(f"/cds-services/{service.id}", json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"], "the data still supports a card"
    assert runtime.store is not None
    [call] = stored_hook_calls(runtime.store.engine)
    assert {
        "code": "operation-outcome",
        "reason": "OperationOutcome issue: severity warning, code incomplete",
    } in call["data_problems"]
