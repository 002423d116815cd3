"""The decision rules on small, hand-built evidence: one rule of the engine per test."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.context.models import EMPTY_CHART, ChartContext
from cds_service.evidence import build_evidence
from cds_service.rules.assessment import Assessment
from cds_service.rules.engine import assess, compare, number
from cds_service.runtime import Runtime
from tests.evidence.observation_builders import AS_OF, observation, quantity
from tests.rules.charts import chart, finding

UNITS = {
    "il6": "pg/mL", "ifng": "pg/mL", "il18": "pg/mL", "cxcl9": "pg/mL", "il1b": "pg/mL",
    "ferritin": "ng/mL", "crp": "mg/L", "mhla_dr": "{molecules}/{cell}", "temperature": "Cel",
    "lymphocytes": "10*9/L",
}  # fmt: skip


def assessed(runtime: Runtime, chart: ChartContext = EMPTY_CHART, **values: Any) -> Assessment:
    """Assess evidence made of one fresh result per keyword (analyte=value), in `chart`."""
    resources = []
    for i, (analyte, value) in enumerate(values.items()):
        resources.append(
            observation(analyte, id=f"obs-{i}", valueQuantity=quantity(value, UNITS[analyte]))
        )
    return assess(build_evidence(resources, runtime.catalog, AS_OF), runtime.rules, chart)


SEPSIS = chart(finding("sepsis"))


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
    # IL-18 and CXCL9 cut-offs both come from Mizuta 2019 (one sJIA population): comparable.
    # IL-18 400,000 pg/mL is 5.8× its 69,250; CXCL9 7,000 is 2.2× its 3,130: 5.8 >= 2 × 2.2.
    leading = assessed(runtime, il6=5, il18=400_000, cxcl9=7_000)
    assert (leading.subtype, leading.decision) == ("il1-driven", "leading-axis")
    assert "axis leads (5.8× its threshold against 2.2×" in leading.rationale
    # CXCL9 10,000 is 3.2×: 5.8 < 2 × 3.2 -> no axis leads.
    mixed = assessed(runtime, il6=5, il18=400_000, cxcl9=10_000)
    assert (mixed.subtype, mixed.decision) == ("mixed-pattern", "mixed-pattern")
    assert {a.axis for a in mixed.elevated_axes} == {"il1", "ifng"}


@pytest.mark.parametrize("ifng", [150, 225])
def test_axes_whose_thresholds_come_from_different_populations_are_not_ranked(
    runtime: Runtime, ifng: float
) -> None:
    """IL-6 > 80 pg/mL is Herold's COVID-19 cut-off, IFN-γ > 75 pg/mL Xu's paediatric-HLH one:
    5× against 2× (or 3×) says nothing about which cytokine leads, whatever the ratio."""
    result = assessed(runtime, il6=400, ifng=ifng, il18=500)
    assert (result.subtype, result.decision) == ("mixed-pattern", "unranked")
    assert {a.axis for a in result.elevated_axes} == {"il6", "ifng"}
    assert "leads" not in result.rationale
    assert result.rationale.startswith(
        "No clinical setting is recorded, so no cytokine axis is ranked"
    )
    for shown in (
        "IL-6 > 80 pg/mL (population: Adults hospitalised with COVID-19",
        "source: Herold, J Allergy Clin Immunol 2020",
        "IFN-γ > 75 pg/mL (population: Febrile children with suspected HLH",
        "source: Xu, J Pediatr 2012",
    ):
        assert shown in result.rationale
    assert result.advice == () and result.state is None


def test_a_recorded_setting_does_not_rank_thresholds_of_different_populations_either(
    runtime: Runtime,
) -> None:
    result = assessed(runtime, chart(finding("hlh")), il6=400, ifng=150, il18=500)
    assert result.decision == "unranked"
    assert result.rationale.startswith("No cytokine axis is ranked: the thresholds of")


def test_mals_ferritin_takes_precedence_over_low_hla_dr_in_sepsis(runtime: Runtime) -> None:
    result = assessed(runtime, SEPSIS, mhla_dr=3000, ferritin=6000, **ALL_GROUPS)
    assert result.subtype == "il1-driven"
    assert result.state is not None and result.state.id == "mals"
    assert any("MALS takes precedence" in note for note in result.notes)
    without_mals = assessed(runtime, SEPSIS, mhla_dr=3000, ferritin=3000, **ALL_GROUPS)
    assert without_mals.subtype == "immunoparalysis"
    assert without_mals.state is not None and without_mals.state.id == "immunoparalysis"


def test_immunoparalysis_overrides_a_high_il6_in_sepsis(runtime: Runtime) -> None:
    result = assessed(runtime, SEPSIS, mhla_dr=2500, il6=900, ferritin=800, il18=500, ifng=5)
    assert result.subtype == "immunoparalysis"


@pytest.mark.parametrize("setting", [None, "covid19", "iec", "hlh", "stills"])
def test_sepsis_rules_are_not_applied_outside_sepsis(runtime: Runtime, setting: str | None) -> None:
    """PROVIDE's ferritin and HLA-DR rules are sepsis rules (clinical-settings.md §2.3)."""
    where = chart(finding(setting)) if setting else EMPTY_CHART
    result = assessed(runtime, where, il6=900, ferritin=6000, mhla_dr=2500, il18=500, ifng=5)
    assert result.subtype == "il6-driven"  # ferritin is no IL-1 marker, HLA-DR no veto
    assert result.axis("il6").excluded_by == ()
    assert {m.state for m in result.immune} <= {"not-applied", "missing"}


def test_the_covid_19_il6_cut_off_is_not_judged_in_sepsis(runtime: Runtime) -> None:
    """Herold 2020's IL-6 > 80 pg/mL and RECOVERY's CRP are COVID-19 cut-offs: in sepsis the
    IL-6 axis is not judged, and no note says IL-6 is above a threshold."""
    result = assessed(runtime, SEPSIS, il6=900, crp=200, ferritin=5000, il18=500, ifng=5)
    assert result.subtype == "il1-driven"
    il6 = result.axis("il6")
    assert not il6.elevated
    assert {m.state for m in (*il6.pivotal, *il6.supportive)} == {"not-applied"}
    assert not any("IL-6" in note and "above threshold" in note for note in result.notes)
    assert any("discordant" in note for note in result.notes)  # MALS ferritin, IL-18 not MAS
    # No IL-6 blockade and no anakinra drafted in sepsis by default: the MALS evidence only.
    assert [(a.rule, a.status) for a in result.advice] == [("sepsis-mals-evidence", "advise")]


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


def test_single_signs_without_the_diagnostic_bar_ask_for_nothing(runtime: Runtime) -> None:
    """One ferritin >= 500 and one CRP >= 75 are not hyperinflammation (no cHIS result)."""
    result = assessed(runtime, ferritin=900, crp=120)
    assert result.subtype is None and result.diagnostic_bar is None
    assert result.missing_groups == ("IL-6", "IL-1β or IL-18", "IFN-γ or CXCL9")


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
