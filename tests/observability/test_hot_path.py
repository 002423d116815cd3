"""Properties of the hot path that keep it lean (speed itself is measured by bench/, not here)."""

from __future__ import annotations

import gc
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.composition import build_runtime
from cds_service.demo import hook_request
from cds_service.hooks.request import HookRequest
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
    the p99 latency before) just before gunicorn takes over. gunicorn's run() forks and blocks,
    which a test process cannot do, so it is replaced by a probe of the collector at that
    moment; the served tests run the real thing."""
    from cds_service import serving

    seen: dict[str, object] = {}

    def probe(self: serving.GunicornServer) -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["enabled"] = gc.isenabled()
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
    assert seen["app"] is app
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000  # the whole start-up heap
    assert seen["enabled"] is True  # frozen, not switched off: new garbage is still collected
