"""Malformed input never raises out of the evidence layer: it becomes data problems."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from observation_builders import AS_OF, observation, quantity

from cds_service.evidence import Catalog, Evidence, build_evidence, load_catalog

BENCH = Path(__file__).resolve().parents[2] / "fixtures" / "patients" / "lab-bench.json"

# (resource, expected problem codes): wrong types and shapes, one at a time.
MALFORMED = [
    (observation("il6", code=["26881-3"], valueQuantity=quantity(1, "pg/mL")), ["malformed"]),
    (
        observation("il6", code={"coding": "26881-3"}, valueQuantity=quantity(1, "pg/mL")),
        ["unknown-code"],
    ),
    (observation("il6", code={"coding": [None, 5, {"system": 1, "code": 2}]}), ["unknown-code"]),
    ({k: v for k, v in observation("il6").items() if k != "code"}, ["malformed"]),
    (observation("il6", valueQuantity=[1, "pg/mL"]), ["malformed"]),
    (observation("il6", valueQuantity={"value": {"nested": 1}, "unit": "pg/mL"}), ["no-value"]),
    (observation("il6", valueQuantity={"value": 1, "unit": 5}), ["unit-missing"]),
    (
        observation("il6", valueQuantity={"value": 1, "unit": "pg/mL\x00\n<script>"}),
        ["unit-not-convertible"],
    ),
    (observation("il6", valueQuantity=quantity(1, "pg/mL"), referenceRange={"high": 5}), []),
    (
        observation(
            "il6", valueQuantity=quantity(1, "pg/mL"), referenceRange=[None, "x", {"high": "7"}]
        ),
        [],
    ),
    (observation("il6", valueQuantity=quantity(1, "pg/mL"), interpretation="H"), []),
    (observation("il6", valueQuantity=quantity(1, "pg/mL"), component={"code": 1}), []),
    (observation("il6", when=20261120, valueQuantity=quantity(1, "pg/mL")), ["no-effective-time"]),
    (
        observation(
            "il6", when=None, effectivePeriod="yesterday", valueQuantity=quantity(1, "pg/mL")
        ),
        ["no-effective-time"],
    ),
    (observation("il6", id=["x"], valueQuantity=quantity(1, "pg/mL")), []),
    ({"resourceType": "Bundle", "entry": {"resource": {}}}, ["malformed"]),
    (
        {"resourceType": "Bundle", "entry": [None, {"resource": None}, {"no": "resource"}]},
        ["malformed", "malformed", "malformed"],
    ),
    (
        {"resourceType": "DiagnosticReport", "contained": "x", "result": [None, {"reference": 5}]},
        [],
    ),
    ({"resourceType": "OperationOutcome", "issue": "broken"}, ["operation-outcome"]),
    ({"resourceType": 42}, ["malformed"]),
    ({"no": "resourceType"}, ["malformed"]),
    ("Observation", ["malformed"]),
    (None, ["malformed"]),
    (3.14, ["malformed"]),
    ([observation("il6")], ["malformed"]),
]


@pytest.mark.parametrize(("resource", "codes"), MALFORMED)
def test_malformed_resources_become_problems(
    catalog: Catalog, resource: Any, codes: list[str]
) -> None:
    evidence = build_evidence([resource], catalog, AS_OF)
    assert isinstance(evidence, Evidence)
    assert [p.code for p in evidence.problems] == codes


def test_unreadable_id_still_gives_a_source(catalog: Catalog) -> None:
    evidence = build_evidence(
        [observation("il6", id=["x"], valueQuantity=quantity(1, "pg/mL"))], catalog, AS_OF
    )
    assert evidence.analytes["il6"].latest.source == "Observation/(no id)"


def test_deeply_nested_bundles_stop_with_a_problem(catalog: Catalog) -> None:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": observation("il6")}]}
    for _ in range(10):
        bundle = {"resourceType": "Bundle", "entry": [{"resource": bundle}]}
    assert [p.code for p in build_evidence([bundle], catalog, AS_OF).problems] == ["malformed"]


# Hypothesis: random JSON-ish garbage, alone and spliced into real Observations

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceType",
                    "status",
                    "code",
                    "coding",
                    "system",
                    "value",
                    "unit",
                    "valueQuantity",
                    "valueString",
                    "valueRange",
                    "component",
                    "entry",
                    "resource",
                    "effectiveDateTime",
                    "referenceRange",
                    "low",
                    "high",
                    "id",
                    "contained",
                    "result",
                    "reference",
                    "issue",
                    "link",
                    "comparator",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)
_CATALOG = load_catalog()
_BENCH_ENTRIES = [e["resource"] for e in json.loads(BENCH.read_text())["entry"]]
# build_evidence's last line of defence; the readers should handle every shape before it.
_UNEXPECTED = "Observation could not be read"
_PATHS = [
    "status",
    "code",
    "valueQuantity",
    "valueString",
    "component",
    "referenceRange",
    "effectiveDateTime",
    "effectivePeriod",
    "interpretation",
    "id",
    "resourceType",
    "meta",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(_json, max_size=5))
def test_random_garbage_never_raises(items: list[Any]) -> None:
    evidence = build_evidence(items, _CATALOG, AS_OF)
    assert isinstance(evidence, Evidence)
    assert _UNEXPECTED not in {p.reason for p in evidence.problems}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(_BENCH_ENTRIES) - 1), field=st.sampled_from(_PATHS), junk=_json)
def test_garbage_in_one_field_of_a_real_resource_never_raises(
    index: int, field: str, junk: Any
) -> None:
    resource = copy.deepcopy(_BENCH_ENTRIES[index])
    resource[field] = junk
    evidence = build_evidence([resource, *_BENCH_ENTRIES[:3]], _CATALOG, AS_OF)
    assert isinstance(evidence, Evidence)
    assert _UNEXPECTED not in {p.reason for p in evidence.problems}
