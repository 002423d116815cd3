"""Properties of the hot path that keep it lean (speed itself is measured by bench/, not here)."""

from __future__ import annotations

import gc
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.composition import build_runtime
from cds_service.demo import hook_request
from cds_service.evidence import build_evidence
from cds_service.fhir.draft_orders import medication_orders
from cds_service.hooks.request import HookRequest
from cds_service.jsontext import parse_json
from cds_service.settings import Settings
from tests.conftest import load_fixture


def test_prefetch_and_draft_orders_are_not_copied_by_validation() -> None:
    """The prefetch Bundles (most of a request's bytes) reach the readers as parsed: pydantic
    checks the envelope only, so nothing deep-copies or re-validates the resources."""
    runtime = build_runtime(Settings(auth="off"))
    service = runtime.services["cytokine-storm-order-sign"]
    body = hook_request(
        service,
        load_fixture("patients/lab-bench.json"),
        draft_orders=load_fixture("orders/anakinra.json"),
        now=datetime.now(UTC),
    )
    request = HookRequest.model_validate(body)
    assert request.prefetch is not None
    for key, value in body["prefetch"].items():
        assert request.prefetch[key] is value
    context = service.read_context(request.context)
    # The context dict itself is a shallow copy; the order resources are the parsed ones.
    orders = body["context"]["draftOrders"]
    assert context.draft_orders is not None and context.draft_orders["entry"] is orders["entry"]


def test_knowledge_is_loaded_once_per_set_of_files() -> None:
    """Rules, catalog and card templates are built at start-up and shared, not per call."""
    first = build_runtime(Settings(auth="off"))
    second = build_runtime(Settings(auth="off"))
    assert first.rules is second.rules
    assert first.catalog is second.catalog
    assert first.cards is second.cards


def test_serve_freezes_start_up_objects_out_of_the_collector(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """serve() freezes what start-up built (a full collection over those objects took ~60 ms:
    the p99 latency before) and raises the youngest generation's threshold just before gunicorn
    takes over. gunicorn's run() forks and blocks, which a test process cannot do, so it is
    replaced by a probe of the collector at that moment; the served tests run the real thing."""
    from cds_service import serving

    seen: dict[str, object] = {}
    threshold = gc.get_threshold()

    def probe(self: serving.GunicornServer) -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["enabled"] = gc.isenabled()
        seen["threshold"] = gc.get_threshold()
        seen["app"] = self.load()

    monkeypatch.setattr(serving.GunicornServer, "run", probe)
    settings = Settings(auth="off")
    app = create_app(settings)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        serving.serve(app, settings, serving.ServingProcess({}, tmp_path, os.getpid()))
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert seen["app"] is app
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000  # the whole start-up heap
    assert seen["enabled"] is True  # frozen, not switched off: new garbage is still collected
    assert seen["threshold"] == (serving.GC_YOUNGEST_THRESHOLD, *threshold[1:])


def test_a_hook_call_reads_the_parsed_body_itself_and_builds_no_fhir_model(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the app: the Observations the evidence reader gets and the draft orders the order
    reader gets are the very objects the JSON parser made (nothing copied, nothing re-validated
    on the way), no fhir.resources model is built for the answer, and one LabValue is validated
    per lab value read (no model re-built for the cards, the audit row or the profile data)."""
    from fhir_core.fhirabstractmodel import FHIRAbstractModel

    from cds_service import decision
    from cds_service.api import http
    from cds_service.evidence import models

    seen: dict[str, Any] = {}

    def parse(raw: bytes) -> Any:
        seen["body"] = parse_json(raw)
        return seen["body"]

    def evidence(resources: Any, *args: Any) -> Any:
        seen["resources"] = list(resources)
        seen["evidence"] = build_evidence(seen["resources"], *args)
        return seen["evidence"]

    def orders(bundle: Any, **kwargs: Any) -> Any:
        seen["orders"] = bundle
        return medication_orders(bundle, **kwargs)

    counts = {"fhir": 0, "lab": 0}
    fhir_init, lab_init = FHIRAbstractModel.__init__, models.LabValue.__init__
    lab_validate = models.LabValue.model_validate

    def counting(kind: str, init: Any) -> Any:
        def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
            counts[kind] += 1
            init(self, *args, **kwargs)

        return wrapped

    def counting_validation(cls: Any, data: Any, **kwargs: Any) -> Any:
        counts["lab"] += 1
        return lab_validate(data, **kwargs)

    monkeypatch.setattr(http, "parse_json", parse)
    monkeypatch.setattr(decision, "build_evidence", evidence)
    monkeypatch.setattr(decision, "medication_orders", orders)
    monkeypatch.setattr(FHIRAbstractModel, "__init__", counting("fhir", fhir_init))
    monkeypatch.setattr(models.LabValue, "__init__", counting("lab", lab_init))
    monkeypatch.setattr(models.LabValue, "model_validate", classmethod(counting_validation))
    # The bench patient with its chart (COVID-19 needing oxygen): order-sign reads the draft
    # orders; patient-view answers a card with a suggested order (a resource built as JSON).
    patient = load_fixture("patients/lab-bench.json")
    patient["entry"] += load_fixture("chart/lab-bench-covid19.json")["entry"]
    services = build_runtime(Settings(auth="off")).services
    view = hook_request(services["cytokine-storm-patient-view"], patient, now=datetime.now(UTC))
    answer = client.post("/cds-services/cytokine-storm-patient-view", json=view)
    assert answer.status_code == 200, answer.get_json()
    assert any(card.get("suggestions") for card in answer.get_json()["cards"])
    sign = services["cytokine-storm-order-sign"]
    orders = load_fixture("orders/anakinra.json")
    body = hook_request(sign, patient, draft_orders=orders, now=datetime.now(UTC))
    answer = client.post(f"/cds-services/{sign.id}", json=body)
    assert answer.status_code == 200, answer.get_json()

    sent = {
        id(entry["resource"])
        for bundle in seen["body"]["prefetch"].values()
        if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle"
        for entry in bundle["entry"]
    }
    observations = [r for r in seen["resources"] if r.get("resourceType") == "Observation"]
    assert len(observations) >= 50
    assert {id(r) for r in observations} <= sent  # the parsed dicts themselves
    assert seen["orders"]["entry"] is seen["body"]["context"]["draftOrders"]["entry"]
    assert counts["fhir"] == 0
    values = sum(len(a.history) for a in seen["evidence"].analytes.values())
    assert counts["lab"] == 2 * values  # one per value read, in each of the two calls
    assert values > len(observations)  # a panel carries several values
