"""Time: effective[x] forms, freshness windows, latest/previous and the trend rule."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from observation_builders import AS_OF, observation, quantity

from cds_service.evidence import Catalog, build_evidence
from cds_service.evidence.catalog import TrendRule
from cds_service.evidence.models import LabValue
from cds_service.evidence.summary import trend

VALUE = {"valueQuantity": quantity(120, "pg/mL")}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"effectiveDateTime": "2026-11-20T06:00:00Z"}, datetime(2026, 11, 20, 6, tzinfo=UTC)),
        ({"effectiveDateTime": "2026-11-20T07:00:00+01:00"}, datetime(2026, 11, 20, 6, tzinfo=UTC)),
        ({"effectiveDateTime": "2026-11-20"}, datetime(2026, 11, 20, tzinfo=UTC)),
        (
            {"effectiveInstant": "2026-11-20T05:30:00.250Z"},
            datetime(2026, 11, 20, 5, 30, 0, 250000, tzinfo=UTC),
        ),
        (
            {"effectivePeriod": {"start": "2026-11-20T04:00:00Z", "end": "2026-11-20T05:00:00Z"}},
            datetime(2026, 11, 20, 5, tzinfo=UTC),
        ),
        (
            {"effectivePeriod": {"start": "2026-11-20T04:00:00Z"}},
            datetime(2026, 11, 20, 4, tzinfo=UTC),
        ),
        ({"issued": "2026-11-20T08:10:00Z"}, datetime(2026, 11, 20, 8, 10, tzinfo=UTC)),
        (
            {"effectiveDateTime": "not a date", "issued": "2026-11-20T08:10:00Z"},
            datetime(2026, 11, 20, 8, 10, tzinfo=UTC),
        ),
    ],
)
def test_effective_time_forms(catalog: Catalog, fields: dict[str, Any], expected: datetime) -> None:
    obs = observation("il6", when=None, **VALUE, **fields)
    evidence = build_evidence([obs], catalog, AS_OF)
    effective = evidence.analytes["il6"].latest.effective
    assert effective == expected
    assert effective.tzinfo is not None and effective.utcoffset() == timedelta(0)


def test_no_time_at_all_is_a_problem(catalog: Catalog) -> None:
    evidence = build_evidence([observation("il6", id="t", when=None, **VALUE)], catalog, AS_OF)
    assert evidence.get("il6") is None
    assert [(p.code, p.reference) for p in evidence.problems] == [
        ("no-effective-time", "Observation/t")
    ]


def test_future_dated_results_are_kept_out(catalog: Catalog) -> None:
    future = observation("il6", id="t", when="2026-11-20T12:30:00Z", **VALUE)
    skewed = observation("il6", id="s", when="2026-11-20T12:02:00Z", **VALUE)  # within clock skew
    evidence = build_evidence([future, skewed], catalog, AS_OF)
    assert [(p.code, p.reference) for p in evidence.problems] == [("future-dated", "Observation/t")]
    assert evidence.analytes["il6"].latest.source == "Observation/s"


# (analyte, age of the latest result in hours, fresh?) - windows from catalog.yaml
FRESHNESS = [
    ("il6", 47.9, True),
    ("il6", 48.0, True),
    ("il6", 48.1, False),
    ("ferritin", 71.0, True),
    ("ferritin", 73.0, False),
    ("crp", 23.0, True),
    ("crp", 25.0, False),
]


@pytest.mark.parametrize(("analyte", "age_hours", "fresh"), FRESHNESS)
def test_freshness_windows(catalog: Catalog, analyte: str, age_hours: float, fresh: bool) -> None:
    when = (AS_OF - timedelta(hours=age_hours)).isoformat()
    unit = {"il6": "pg/mL", "ferritin": "ng/mL", "crp": "mg/L"}[analyte]
    evidence = build_evidence(
        [observation(analyte, when=when, valueQuantity=quantity(10, unit))], catalog, AS_OF
    )
    found = evidence.analytes[analyte]
    assert found.fresh is fresh
    assert found.freshness_hours == catalog.analyte(analyte).freshness_hours
    assert (evidence.fresh(analyte) is not None) is fresh


def test_latest_previous_and_history_newest_first(catalog: Catalog) -> None:
    values = [
        ("a", "2026-11-18T06:00:00Z", 80),
        ("b", "2026-11-20T06:00:00Z", 160),
        ("c", "2026-11-19T06:00:00Z", 100),
    ]
    resources = [
        observation("il6", id=i, when=w, valueQuantity=quantity(v, "pg/mL")) for i, w, v in values
    ]
    il6 = build_evidence(resources, catalog, AS_OF).analytes["il6"]
    assert [v.value for v in il6.history] == [160, 100, 80]
    assert (il6.latest.value, il6.previous.value if il6.previous else None, il6.trend) == (
        160,
        100,
        "rising",
    )


def _lab(value: float, comparator: str | None = None, upper: float | None = None) -> LabValue:
    return LabValue(
        analyte="il6",
        value=value,
        comparator=comparator,
        upper=upper,
        unit="pg/mL",
        family="mass",
        effective=AS_OF,
        status="final",
        reference_low=None,
        reference_high=None,
        interpretation=(),
        source="Observation/x",
    )


RELATIVE = TrendRule(relative_change=0.10, absolute_change=None)
ABSOLUTE = TrendRule(relative_change=None, absolute_change=0.5)

# (latest, previous, rule, trend)
TRENDS = [
    (_lab(120), _lab(100), RELATIVE, "rising"),
    (_lab(111), _lab(100), RELATIVE, "rising"),
    (_lab(110), _lab(100), RELATIVE, "stable"),  # exactly 10 % is not more than 10 %
    (_lab(95), _lab(100), RELATIVE, "stable"),
    (_lab(80), _lab(100), RELATIVE, "falling"),
    (_lab(5), _lab(0), RELATIVE, "rising"),
    (_lab(120), _lab(5, "<"), RELATIVE, "rising"),  # from below detection to 120
    (_lab(5, "<"), _lab(120), RELATIVE, "falling"),
    (_lab(4), _lab(5, "<"), RELATIVE, "unknown"),  # "<5" could have been 4
    (_lab(5, "<"), _lab(5, "<"), RELATIVE, "unknown"),
    (_lab(5000, ">"), _lab(3000), RELATIVE, "rising"),
    (_lab(3000), _lab(5000, ">"), RELATIVE, "falling"),
    (_lab(6000), _lab(5000, ">"), RELATIVE, "unknown"),
    (_lab(30, ">=", 40), _lab(10), RELATIVE, "rising"),  # a range entirely above
    (_lab(10, ">=", 40), _lab(20), RELATIVE, "unknown"),  # a range straddling the previous value
    (_lab(38.9), _lab(38.3), ABSOLUTE, "rising"),  # temperature: absolute 0.5 Cel
    (_lab(38.6), _lab(38.3), ABSOLUTE, "stable"),
    (_lab(37.2), _lab(38.3), ABSOLUTE, "falling"),
    (_lab(100), None, RELATIVE, "unknown"),
]


@pytest.mark.parametrize(("latest", "previous", "rule", "expected"), TRENDS)
def test_trend_rule(
    latest: LabValue, previous: LabValue | None, rule: TrendRule, expected: str
) -> None:
    assert trend(latest, previous, rule) == expected


def test_temperature_uses_an_absolute_trend_threshold(catalog: Catalog) -> None:
    rule = catalog.analyte("temperature").trend
    assert (rule.relative_change, rule.absolute_change) == (None, 0.5)
    assert catalog.analyte("il6").trend.relative_change == pytest.approx(0.10)


def test_as_of_must_be_timezone_aware(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_evidence([], catalog, datetime(2026, 11, 20, 12))


@pytest.mark.parametrize(
    "when", ["2026-11-20T06:00:00", "2026-11-20T06:00", "2026-11-20T06:00:00.125"]
)
def test_a_time_without_a_zone_is_read_as_utc_and_reported(catalog: Catalog, when: str) -> None:
    obs = observation("il6", when=when, **VALUE)
    evidence = build_evidence([obs], catalog, AS_OF)
    latest = evidence.analytes["il6"].latest
    assert latest.effective.replace(microsecond=0) == datetime(2026, 11, 20, 6, tzinfo=UTC)
    [problem] = [p for p in evidence.problems if p.code == "time-without-zone"]
    assert problem.analyte == "il6"
    assert problem.reference == "Observation/obs-1"
    assert "read as UTC" in problem.reason  # says how it was read: cards and answers show it


@pytest.mark.parametrize(
    "fields",
    [
        {"effectiveDateTime": "2026-11-20T06:00:00Z"},
        {"effectiveDateTime": "2026-11-20T07:00:00+01:00"},
        {"effectiveDateTime": "2026-11-20"},  # a date has no zone in FHIR: nothing to report
        {"effectiveDateTime": "2026-11"},
    ],
)
def test_times_with_a_zone_or_dates_are_not_reported(
    catalog: Catalog, fields: dict[str, Any]
) -> None:
    obs = observation("il6", when=None, **VALUE, **fields)
    evidence = build_evidence([obs], catalog, AS_OF)
    assert "il6" in evidence.analytes
    assert not [p for p in evidence.problems if p.code == "time-without-zone"]


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
def test_a_time_beyond_the_calendar_in_utc_is_no_time(catalog: Catalog, when: str) -> None:
    evidence = build_evidence([observation("il6", when=when, **VALUE)], catalog, AS_OF)
    assert "il6" not in evidence.analytes
    assert [p.code for p in evidence.problems] == ["no-effective-time"]
