"""Observation status, and revisions of the same result (amended/corrected replace the original)."""

from typing import Any

import pytest
from observation_builders import AS_OF, observation, quantity

from cds_service.evidence import Catalog, build_evidence

VALUE = {"valueQuantity": quantity(500, "ng/mL")}


@pytest.mark.parametrize("status", ["final", "amended", "corrected", "preliminary"])
def test_usable_statuses_are_kept_and_marked(catalog: Catalog, status: str) -> None:
    evidence = build_evidence([observation("ferritin", status=status, **VALUE)], catalog, AS_OF)
    assert evidence.problems == ()
    assert evidence.analytes["ferritin"].latest.status == status


@pytest.mark.parametrize(
    "status", ["cancelled", "entered-in-error", "registered", "unknown", 7, None]
)
def test_other_statuses_are_ignored_and_reported(catalog: Catalog, status: Any) -> None:
    obs = observation("ferritin", id="f1", **VALUE)
    obs["status"] = status
    evidence = build_evidence([obs], catalog, AS_OF)
    assert evidence.get("ferritin") is None
    assert [(p.code, p.reference, p.analyte) for p in evidence.problems] == [
        ("status-ignored", "Observation/f1", "ferritin")
    ]


def _revision(
    status: str, value: float, version: str | None = None, updated: str | None = None
) -> dict[str, Any]:
    obs = observation("ferritin", id="f1", status=status, valueQuantity=quantity(value, "ng/mL"))
    if version or updated:
        obs["meta"] = {k: v for k, v in {"versionId": version, "lastUpdated": updated}.items() if v}
    return obs


# (revisions in arrival order, expected value or None when retracted, expected status)
REVISIONS = [
    ([_revision("final", 5000), _revision("amended", 500)], 500.0, "amended"),
    (
        [_revision("corrected", 500), _revision("final", 5000)],
        500.0,
        "corrected",
    ),  # order does not matter
    ([_revision("preliminary", 480), _revision("final", 500)], 500.0, "final"),
    ([_revision("final", 5000), _revision("entered-in-error", 5000)], None, None),  # retracted
    # Version metadata decides before status: version 3 (final) is newer than version 2.
    ([_revision("amended", 400, "2"), _revision("final", 450, "3")], 450.0, "final"),
    (
        [
            _revision("final", 450, updated="2026-11-20T09:00:00Z"),
            _revision("corrected", 400, updated="2026-11-20T08:00:00Z"),
        ],
        450.0,
        "final",
    ),
]


@pytest.mark.parametrize(("revisions", "value", "status"), REVISIONS)
def test_newest_revision_of_the_same_id_replaces_the_original(
    catalog: Catalog, revisions: list[dict[str, Any]], value: float | None, status: str | None
) -> None:
    evidence = build_evidence(revisions, catalog, AS_OF)
    found = evidence.get("ferritin")
    if value is None:
        assert found is None
        assert [p.code for p in evidence.problems] == ["status-ignored"]
    else:
        assert found is not None
        assert (found.latest.value, found.latest.status, len(found.history)) == (value, status, 1)
        assert evidence.problems == ()


def test_two_different_copies_with_nothing_to_choose_between_them_are_reported(
    catalog: Catalog,
) -> None:
    """Same id, no meta, the same status, different values: the first is used, and said so."""
    first = observation("il6", id="il6-2", valueQuantity=quantity(5, "pg/mL"))
    second = observation("il6", id="il6-2", valueQuantity=quantity(320, "pg/mL"))
    evidence = build_evidence([first, second, first], catalog, AS_OF)
    assert evidence.analytes["il6"].latest.value == 5
    (problem,) = evidence.problems  # reported once, however many copies
    assert (problem.code, problem.reference) == ("conflicting-copies", "Observation/il6-2")
    assert "the first received was used" in problem.reason
    # The same copy twice (two prefetch keys) is no conflict.
    assert build_evidence([first, dict(first)], catalog, AS_OF).problems == ()


def test_preliminary_goes_after_final_at_the_same_time(catalog: Catalog) -> None:
    prelim = observation(
        "crp", id="a-prelim", status="preliminary", valueQuantity=quantity(90, "mg/L")
    )
    final = observation("crp", id="b-final", valueQuantity=quantity(95, "mg/L"))
    evidence = build_evidence([prelim, final], catalog, AS_OF)
    crp = evidence.analytes["crp"]
    assert (crp.latest.source, crp.latest.status) == ("Observation/b-final", "final")
    assert crp.previous is None  # same time is not "earlier"
