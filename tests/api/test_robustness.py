"""Whatever a client sends, the service answers with a status and a JSON body: never a 500.

Real hook requests for the fixture patients are mutated at random places (values replaced by
other JSON types, members deleted) and sent through the hook endpoints.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.api.runtime import current_runtime
from cds_service.demo import hook_request
from tests.conftest import load_fixture

ANSWERS = {200, 400, 412}
# Function-scoped fixtures are read-only here, so reusing them across examples is safe.
fuzz = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _mutated(body: dict[str, Any], path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    mutated = copy.deepcopy(body)
    parent = mutated
    for part in path[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return mutated


@pytest.fixture(scope="module")
def requests_by_hook(app_for_module: Flask) -> dict[str, dict[str, Any]]:
    now = datetime.now(UTC)
    with app_for_module.app_context():
        services = {s.hook: s for s in current_runtime().services.values()}
    orders = load_fixture("orders/methylprednisolone-pulse.json")
    patient = load_fixture("patients/css-immunoparalysis.json")
    return {
        hook: hook_request(service, patient, draft_orders=orders, now=now)
        for hook, service in services.items()
    }


@pytest.fixture(scope="module")
def app_for_module(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    from cds_service import create_app
    from cds_service.settings import Settings

    return create_app(Settings(auth="off", data_dir=tmp_path_factory.mktemp("data")))


@settings(fuzz, max_examples=150)
@given(data=st.data(), new=JSON_VALUES, delete=st.booleans())
def test_mutated_hook_requests_never_answer_500(
    app_for_module: Flask,
    requests_by_hook: dict[str, dict[str, Any]],
    data: st.DataObject,
    new: Any,
    delete: bool,
) -> None:
    hook = data.draw(st.sampled_from(sorted(requests_by_hook)))
    body = requests_by_hook[hook]
    path = data.draw(st.sampled_from(_paths(body)))
    client: FlaskClient = app_for_module.test_client()
    with app_for_module.app_context():
        service = next(s for s in current_runtime().services.values() if s.hook == hook)
    payload = json.dumps(_mutated(body, path, new, delete))  # stdlib: any integer size
    response = client.post(
        f"/cds-services/{service.id}", data=payload, content_type="application/json"
    )
    assert response.status_code in ANSWERS, (path, new, response.get_json())
    assert response.is_json


@settings(fuzz, max_examples=100)
@given(data=st.data(), new=JSON_VALUES, delete=st.booleans())
def test_mutated_bundles_to_evaluate_never_answer_500(
    app_for_module: Flask, data: st.DataObject, new: Any, delete: bool
) -> None:
    bundle = load_fixture("patients/css-il1-mals.json")
    path = data.draw(st.sampled_from(_paths(bundle)))
    payload = json.dumps(_mutated(bundle, path, new, delete))
    response = app_for_module.test_client().post(
        "/evaluate", data=payload, content_type="application/json"
    )
    assert response.status_code in {200, 400}, (path, new, response.get_json())


@settings(fuzz, max_examples=100)
@given(data=st.data(), new=JSON_VALUES, delete=st.booleans())
def test_mutated_feedback_never_answers_500(
    app_for_module: Flask, data: st.DataObject, new: Any, delete: bool
) -> None:
    body = {
        "feedback": [
            {
                "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "clinical-judgement", "system": "x"}},
                "outcomeTimestamp": "2026-11-20T08:31:02.518Z",
            }
        ]
    }
    path = data.draw(st.sampled_from(_paths(body)))
    payload = json.dumps(_mutated(body, path, new, delete))
    response = app_for_module.test_client().post(
        "/cds-services/cytokine-storm-patient-view/feedback",
        data=payload,
        content_type="application/json",
    )
    assert response.status_code in {200, 400}, (path, new, response.get_json())
