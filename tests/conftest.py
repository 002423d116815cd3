"""Shared test fixtures: settings isolated from the developer's environment, the app, files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.decision import Decision, decide
from cds_service.gathering import evaluation_context, record_from_bundle
from cds_service.knowledge import Knowledge
from cds_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, never from the shell that runs pytest."""
    for name in list(os.environ):
        if name.startswith("CYTOKINE_CDS_"):
            monkeypatch.delenv(name)


def decide_bundle(knowledge: Knowledge, bundle: Any, at: datetime) -> Decision:
    """The decision on a patient Bundle at a given time, as POST /evaluate makes it."""
    record, patient_id = record_from_bundle(bundle)
    return decide(knowledge, record, evaluation_context(patient_id), at)


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Authentication is on by default. The generic API tests are about request handling, not
    # about who calls, so they run with it off; tests/auth/ covers authentication with real
    # keys and tokens.
    return Settings(auth="off")
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(autouse=True)
def _data_dir_in_tmp(
    _isolated_environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Settings() a test builds (and every server it starts) keeps its audit store and
    patient-key secret under the test's tmp_path, never in ./data."""
    monkeypatch.setenv("CYTOKINE_CDS_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


SERVICE_FOR_HOOK = {
    "patient-view": "cytokine-storm-patient-view",
    "order-select": "cytokine-storm-order-select",
    "order-sign": "cytokine-storm-order-sign",
}


def hook_body(
    client: FlaskClient,
    hook: str,
    patient: str,
    orders: str | dict[str, Any] | None = None,
    **options: Any,
) -> tuple[str, dict[str, Any]]:
    """(path, body) of a hook request for fixtures/patients/<patient>.json, its dates moved to
    now; the draft orders are fixtures/orders/<orders>.json, or a draftOrders Bundle as given.

    The request is composed the way `cytokine-cds demo-request` composes it: prefetch holds
    what a FHIR server answers to our prefetch templates.
    """
    from datetime import UTC, datetime

    from cds_service.api.runtime import current_runtime
    from cds_service.demo import hook_request

    with client.application.app_context():
        service = current_runtime().services[SERVICE_FOR_HOOK[hook]]
    body = hook_request(
        service,
        load_fixture(f"patients/{patient}.json"),
        draft_orders=load_fixture(f"orders/{orders}.json") if isinstance(orders, str) else orders,
        now=datetime.now(UTC),
        **options,
    )
    return f"/cds-services/{service.id}", body


def hook_call(
    client: FlaskClient,
    hook: str,
    patient: str,
    orders: str | dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """POST the request `hook_body` composes."""
    path, body = hook_body(client, hook, patient, orders, **options)
    return client.post(path, json=body)


from tests.fhir_server import fhir_server  # noqa: E402, F401
