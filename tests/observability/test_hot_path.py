"""Properties of the hot path that keep it lean (speed itself is measured by bench/, not here)."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

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


def test_serve_freezes_start_up_objects_out_of_the_collector() -> None:
    """serve() calls gc.freeze() after the app is built (a full collection over the start-up
    objects took ~60 ms: the p99 latency before). Checked on the function's code, since serve
    itself blocks: the served tests run it for real."""
    from cds_service import serving

    names = serving.serve.__code__.co_names
    assert "freeze" in names and "collect" in names
    assert gc.isenabled()
