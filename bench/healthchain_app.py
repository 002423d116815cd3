"""The benchmark's peer: a CDS service written with HealthChain, as its users write one.

HealthChain (PyPI `healthchain`) is the Python framework for CDS Hooks services. This app is
what its documentation shows: a `HealthChainAPI` with a `CDSHooksService` whose hook handlers
parse the prefetched FHIR data with fhir.resources models and apply one rule (IL-6 above
40 pg/mL). It does far less than the service (no catalog, units, staleness, setting, audit
trail, metrics or authentication), which makes its throughput a floor to clear by a wide margin.

It runs in a virtual environment of its own (HealthChain pins its own FastAPI, pydantic and
fhir.resources), made by `make bench-peer` (bench/.healthchain-venv), and is served with
uvicorn by bench/http_load.py:

    bench/.healthchain-venv/bin/uvicorn --app-dir bench healthchain_app:app --workers 2
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from healthchain.gateway import CDSHooksService, HealthChainAPI
from healthchain.models import Card, CDSRequest, CDSResponse

IL6_LOINC = "26881-3"
IL6_LIMIT = 40.0  # pg/mL

app = HealthChainAPI(title="IL-6 peer", enable_events=False)
cds = CDSHooksService(use_events=False)


def observations(prefetch: dict[str, Any] | None) -> list[Observation]:
    """Every prefetched Observation, as fhir.resources models (the prefetch Bundles parsed)."""
    found: list[Observation] = []
    for value in (prefetch or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            bundle = Bundle.model_validate(value)
            found += [e.resource for e in bundle.entry or [] if isinstance(e.resource, Observation)]
    return found


def latest_il6(found: list[Observation]) -> float | None:
    """The newest IL-6 value, from the Observation itself or a panel's component."""
    values = []
    for obs in found:
        parts = [(obs.code, obs.valueQuantity)]
        parts += [(c.code, c.valueQuantity) for c in obs.component or []]
        for code, quantity in parts:
            codes = {coding.code for coding in code.coding or []}
            if IL6_LOINC in codes and quantity is not None and quantity.value is not None:
                values.append((obs.effectiveDateTime or obs.issued, float(quantity.value)))
    return max(values, key=lambda v: str(v[0]))[1] if values else None


def il6_card(value: float) -> Card:
    return Card(
        summary=f"IL-6 {value:g} pg/mL is above {IL6_LIMIT:g}: consider an IL-6 inhibitor",
        indicator="warning",
        source={"label": "IL-6 peer"},
    )


@cds.hook("patient-view", id="il6-patient-view")
def patient_view(request: CDSRequest) -> CDSResponse:
    value = latest_il6(observations(request.prefetch))
    cards = [il6_card(value)] if value is not None and value > IL6_LIMIT else []
    return CDSResponse(cards=cards)


@cds.hook("order-sign", id="il6-order-sign")
def order_sign(request: CDSRequest) -> CDSResponse:
    # HealthChain 0.16's CDSRequest types `context` as its base context (userId, patientId) and
    # drops every other member, draftOrders included: the orders cannot be read, so this hook
    # can only apply the patient rule (less work than checking the orders would be).
    return patient_view(request)


app.register_service(cds)
