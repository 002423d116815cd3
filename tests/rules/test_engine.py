"""The decision rules on small, hand-built evidence: one rule of the engine per test."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.evidence import build_evidence
from cds_service.rules.assessment import Assessment
from cds_service.rules.engine import assess, compare, number
from cds_service.runtime import Runtime
from tests.evidence.observation_builders import AS_OF, observation, quantity

UNITS = {
    "il6": "pg/mL", "ifng": "pg/mL", "il18": "pg/mL", "cxcl9": "pg/mL", "il1b": "pg/mL",
    "ferritin": "ng/mL", "crp": "mg/L", "mhla_dr": "{molecules}/{cell}", "temperature": "Cel",
    "lymphocytes": "10*9/L",
}  # fmt: skip


def assessed(runtime: Runtime, **values: Any) -> Assessment:
    """Assess evidence made of one fresh result per keyword (analyte=value)."""
    resources = []
    for i, (analyte, value) in enumerate(values.items()):
        resources.append(
            observation(analyte, id=f"obs-{i}", valueQuantity=quantity(value, UNITS[analyte]))
        )
    return assess(build_evidence(resources, runtime.catalog, AS_OF), runtime.rules)


ALL_GROUPS = {"il6": 5, "il18": 500, "ifng": 5}


@pytest.mark.parametrize(
    ("value", "comparator", "comparison", "threshold", "expected"),
    [
        (90, None, ">", 80, True),
        (80, None, ">", 80, False),
        (80, None, ">=", 80, True),
        (5, "<", ">", 80, False),  # "<5" is certainly not above 80
        (5, "<", ">", 3, None),  # "<5" says nothing about 3
        (5000, ">", ">", 4420, True),  # ">5000" is above 4420
        (4420, ">", ">", 4420, True),
        (4420, ">=", ">", 4420, None),
        (3000, ">", ">", 4420, None),
        (4000, "<", "<", 5000, True),
        (5000, "<", "<", 5000, True),
        (5000, "<=", "<", 5000, None),
        (6000, ">", "<", 5000, False),
        (4420.000000000001, None, ">", 4420, False),  # conversion noise is equality
    ],
)
def test_compare_reads_comparators_as_bounds(
    value: float, comparator: str | None, comparison: str, threshold: float, expected: bool | None
) -> None:
    assert compare(value, comparator, comparison, threshold) is expected


def test_range_result_counts_only_when_wholly_past_the_threshold() -> None:
    assert compare(100, ">=", ">", 80, upper=150) is True
    assert compare(60, ">=", ">", 80, upper=70) is False
    assert compare(60, ">=", ">", 80, upper=150) is None


def test_leading_axis_needs_the_dominance_ratio(runtime: Runtime) -> None:
    # IL-6 400 pg/mL is 5× its threshold, IFN-γ 150 pg/mL is 2×: 5 >= 2 × 2 -> IL-6 leads.
    leading = assessed(runtime, il6=400, ifng=150, il18=500)
    assert (leading.subtype, leading.decision) == ("il6-driven", "leading-axis")
    # IFN-γ 225 pg/mL is 3×: 5 < 2 × 3 -> no axis leads.
    mixed = assessed(runtime, il6=400, ifng=225, il18=500)
    assert (mixed.subtype, mixed.decision) == ("mixed-pattern", "mixed-pattern")
    assert {a.axis for a in mixed.elevated_axes} == {"il6", "ifng"}


def test_mals_ferritin_takes_precedence_over_low_hla_dr(runtime: Runtime) -> None:
    result = assessed(runtime, mhla_dr=3000, ferritin=6000, **ALL_GROUPS)
    assert result.subtype == "il1-driven"
    assert any("MALS takes precedence" in note for note in result.notes)
    without_mals = assessed(runtime, mhla_dr=3000, ferritin=3000, **ALL_GROUPS)
    assert without_mals.subtype == "immunoparalysis"


def test_immunoparalysis_overrides_a_high_il6(runtime: Runtime) -> None:
    result = assessed(runtime, mhla_dr=2500, il6=900, ferritin=800, il18=500, ifng=5)
    assert result.subtype == "immunoparalysis"


def test_il6_axis_is_excluded_by_mals_range_ferritin(runtime: Runtime) -> None:
    result = assessed(runtime, il6=900, ferritin=5000, il18=500, ifng=5)
    assert result.subtype == "il1-driven"
    il6 = result.axis("il6")
    assert not il6.elevated and il6.excluded_by == ("ferritin-mals",)
    assert any("places the pattern on another axis" in note for note in result.notes)
    assert any("discordant" in note for note in result.notes)  # MALS ferritin, IL-18 not MAS


def test_fever_is_the_highest_temperature_of_the_day(runtime: Runtime) -> None:
    temps = [
        observation("temperature", id="t1", when="2026-11-20T02:00:00Z",
                    valueQuantity=quantity(39.0, "Cel")),
        observation("temperature", id="t2", when="2026-11-20T10:00:00Z",
                    valueQuantity=quantity(37.2, "Cel")),
    ]  # fmt: skip
    result = assess(build_evidence(temps, runtime.catalog, AS_OF), runtime.rules)
    fever = next(m for m in result.signs if m.marker == "fever")
    assert fever.state == "above" and fever.value is not None and fever.value.value == 39.0


def test_signs_without_cytokines_ask_for_the_panel(runtime: Runtime) -> None:
    result = assessed(runtime, ferritin=900, crp=120)
    assert (result.subtype, result.decision) == ("multiplex-assay-needed", "cytokines-missing")
    assert result.missing_groups == ("IL-6", "IL-1β or IL-18", "IFN-γ or CXCL9")
    # The same signs with every cytokine group measured and normal: nothing to say.
    assert assessed(runtime, ferritin=900, crp=120, **ALL_GROUPS).subtype is None


def test_near_misses_are_listed(runtime: Runtime) -> None:
    result = assessed(runtime, il6=70, ferritin=900, il18=500, ifng=5)
    assert result.subtype is None
    assert [m.marker for m in result.near_misses] == ["il6-high"]  # 70/80 = 0.875 >= 0.8


@pytest.mark.parametrize(
    ("value", "text"),
    [(4420, "4,420"), (38.6, "38.6"), (1.234, "1.23"), (0.45, "0.45"), (12.34, "12.3")],
)
def test_number_formatting_for_people(value: float, text: str) -> None:
    assert number(value) == text
