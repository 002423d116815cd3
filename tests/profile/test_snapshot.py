"""What is stored per assessment: everything the page needs, nothing that names the patient."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import orjson
import pytest

from cds_service.demo import FIXTURE_TIME
from cds_service.profile.page import ProfilePages
from cds_service.profile.snapshot import (
    HISTORY_DAYS,
    StoredProfile,
    build_profile,
    profile_data,
    profile_json,
    profile_record,
)
from cds_service.runtime import Runtime
from tests.conftest import FIXTURES
from tests.profile.conftest import SUBTYPE_PATIENTS, evaluated, patient_bundle
from tests.profile.page_reader import read_page


@pytest.mark.parametrize("patient", sorted(SUBTYPE_PATIENTS))
def test_the_stored_profile_names_no_patient_and_no_resource(
    runtime: Runtime, patient: str
) -> None:
    outcome = evaluated(runtime, patient)
    stored = profile_json(
        build_profile(outcome.assessment, outcome.evidence, runtime.rules, runtime.catalog)
    )
    text = json.dumps(stored)
    assert patient not in text
    ids = [e["resource"]["id"] for e in patient_bundle(patient)["entry"]]
    for resource_id in ids:
        assert resource_id not in text
    assert "Observation/" not in text and "Patient/" not in text
    assert "Synthetic" not in text  # the fixture patients' family name


def test_the_profile_reads_back_to_the_same_assessment_values(runtime: Runtime) -> None:
    outcome = evaluated(runtime, "css-il1-mals")
    stored = build_profile(outcome.assessment, outcome.evidence, runtime.rules, runtime.catalog)
    back = StoredProfile.model_validate(json.loads(json.dumps(profile_json(stored))))
    assert back == stored
    a = back.assessment
    assert a.subtype == "il1-driven" and a.decision == outcome.assessment.decision
    assert a.rationale == outcome.assessment.rationale
    original = {m.marker: m for m in outcome.assessment.markers()}
    for marker in a.markers():
        before = original[marker.marker]
        assert (marker.state, marker.threshold, marker.ratio, marker.source) == (
            before.state,
            before.threshold,
            before.ratio,
            before.source,
        )
        if marker.value is not None:
            assert before.value is not None
            assert marker.value.value == before.value.value
            assert marker.value.effective == before.value.effective
            assert marker.value.source == ""  # the resource id is not kept


def test_history_holds_every_result_of_each_judged_analyte_in_the_window(
    runtime: Runtime,
) -> None:
    outcome = evaluated(runtime, "css-il1-mals")
    stored = build_profile(outcome.assessment, outcome.evidence, runtime.rules, runtime.catalog)
    ferritin = stored.history["ferritin"]
    assert ferritin.display == "Ferritin"
    assert [p.value for p in ferritin.points] == [12500, 4800]  # newest first
    assert ferritin.freshness_hours == 72
    judged = {m.analyte for m in outcome.assessment.markers()}
    assert set(stored.history) == judged & set(outcome.evidence.analytes)
    for analyte, history in stored.history.items():
        assert len(history.points) == len(outcome.evidence.analytes[analyte].history)


def test_results_before_the_window_are_counted_not_kept(runtime: Runtime) -> None:
    outcome = evaluated(runtime, "css-il1-mals")
    later = outcome.evidence.model_copy(
        update={"as_of": FIXTURE_TIME + timedelta(days=HISTORY_DAYS) - timedelta(hours=12)}
    )
    stored = build_profile(outcome.assessment, later, runtime.rules, runtime.catalog)
    ferritin = stored.history["ferritin"]
    # 2026-11-20 06:00 is within 14 days of the later time, 2026-11-19 06:00 is not.
    assert [p.value for p in ferritin.points] == [12500]
    assert ferritin.left_out == 1


def test_stale_markers_are_placed_against_their_threshold(runtime: Runtime) -> None:
    outcome = evaluated(runtime, "css-stale-cytokines")
    stored = build_profile(outcome.assessment, outcome.evidence, runtime.rules, runtime.catalog)
    il6 = next(m for m in stored.assessment.markers() if m.marker == "il6-high")
    assert il6.state == "stale" and il6.threshold is None  # the assessment did not judge it
    placed = stored.stale_placement["il6-high"]
    assert placed.threshold == 80 and placed.value is not None and placed.value.value == 300
    assert placed.value.source == ""


def test_criteria_and_sources_are_kept_for_every_marker(runtime: Runtime) -> None:
    outcome = evaluated(runtime, "css-multiplex-needed")
    stored = build_profile(outcome.assessment, outcome.evidence, runtime.rules, runtime.catalog)
    assert set(stored.criteria) == {m.marker for m in outcome.assessment.markers()}
    assert stored.criteria["mhladr-low"].comparison == "<"
    assert stored.criteria["mhladr-low"].text == "< 5,000 {molecules}/{cell}"
    assert stored.criteria["sil2r-high"].text == "≥ 2,400 U/mL; > 2 × upper reference limit"
    ids = [s.id for s in stored.sources]
    assert "henter2007" in ids  # the multiplex card's own source (hyperinflammation)
    assert all(s.citation for s in stored.sources)
    assert {s.doi for s in stored.sources if s.id == "henter2007"} == {"10.1002/pbc.21039"}


def test_a_profile_that_cannot_be_built_costs_the_page_not_the_call(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = evaluated(runtime, "css-il1-mals")
    broken_catalog = None  # e.g. a bug: the record is skipped and logged, nothing raises
    record = profile_record(
        "x" * 22,
        outcome.assessment,
        outcome.evidence,
        runtime.rules,
        broken_catalog,  # type: ignore[arg-type]
    )
    assert record is None
    assert "stored profile could not be built" in caplog.text


ALL_PATIENTS = sorted(p.stem for p in (FIXTURES / "patients").glob("*.json"))


@pytest.mark.parametrize("patient", ALL_PATIENTS)
def test_the_hot_path_stores_what_the_models_would_and_the_page_is_the_same(
    runtime: Runtime, patient: str
) -> None:
    """profile_data (hook calls: no models) == the StoredProfile models' JSON; the page a
    clinician opens from the stored row shows exactly what it showed when built from models."""
    outcome = evaluated(runtime, patient)
    args = (outcome.assessment, outcome.evidence, runtime.rules, runtime.catalog)
    by_models = profile_json(build_profile(*args))
    fast = profile_data(*args)
    assert fast == by_models
    # As the store keeps it (JSON text) and the page reads it back.
    pages = ProfilePages("notice")
    before = pages.render(StoredProfile.model_validate(json.loads(json.dumps(by_models))))
    after = pages.render(StoredProfile.model_validate(orjson.loads(orjson.dumps(fast))))
    # The charts' SVG element ids are random per render (several SVGs share one page).
    assert _without_svg_ids(after) == _without_svg_ids(before)
    shown_before, shown_after = read_page(before), read_page(after)
    assert shown_after.rows == shown_before.rows and shown_after.links == shown_before.links
    assert shown_after.figures == shown_before.figures
    assert shown_after.svg_labels == shown_before.svg_labels
    named = [(k, v) for k, v in shown_before.ids.items() if not _SVG_ID.fullmatch(k)]
    assert named and named == [
        (k, v) for k, v in shown_after.ids.items() if not _SVG_ID.fullmatch(k)
    ]
    assert "Observation/" not in json.dumps(fast)


_SVG_ID = re.compile(r"[a-z][0-9a-f]{10}")


def _without_svg_ids(html: str) -> str:
    return re.sub(rf"\b{_SVG_ID.pattern}\b", "svg-id", html)
