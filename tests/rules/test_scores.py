"""Scores at their cut-offs (below / at / above) and with missing inputs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cds_service.context.models import (
    EMPTY_CHART,
    ChartContext,
    DrugExposure,
    OxygenSupport,
    SettingFinding,
)
from cds_service.evidence import Catalog, Evidence, build_evidence, load_catalog
from cds_service.rules.scores import (
    ScoreBook,
    ScoresError,
    astct_grade,
    compute_scores,
    criteria_count,
    hscore,
    hscore_probability,
    load_scores,
    mas2016,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
LOINC = "http://loinc.org"
LOCAL = "https://cytokine-cds.github.io/fhir/CodeSystem/lab"
CODES = {
    "temperature": ("8310-5", "Cel"),
    "ferritin": ("2276-4", "ng/mL"),
    "triglycerides": ("2571-8", "mmol/L"),
    "fibrinogen": ("3255-7", "g/L"),
    "ast": ("1920-8", "U/L"),
    "hemoglobin": ("718-7", "g/L"),
    "platelets": ("777-3", "10*9/L"),
    "leukocytes": ("6690-2", "10*9/L"),
    "neutrophils": ("751-8", "10*9/L"),
    "lymphocytes": ("731-0", "10*9/L"),
    "ldh": ("2532-0", "U/L"),
    "ddimer": ("48065-7", "ug/mL{FEU}"),
    "crp": ("1988-5", "mg/L"),
    "il6": ("26881-3", "pg/mL"),
    "sbp": ("8480-6", "mm[Hg]"),
    "map": ("8478-0", "mm[Hg]"),
    "spo2": ("59408-5", "%"),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def book(catalog: Catalog) -> ScoreBook:
    return load_scores(catalog)


def obs(
    analyte: str, value: float, hours_ago: float = 1, unit: str | None = None
) -> dict[str, Any]:
    code, canonical = CODES[analyte]
    unit = unit or canonical
    return {
        "resourceType": "Observation",
        "id": f"{analyte}-{value}-{hours_ago}".replace(".", "_"),
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": (NOW - timedelta(hours=hours_ago)).isoformat(),
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def sil2r_u(value: float) -> dict[str, Any]:
    o = obs("ferritin", value)
    o["id"] = "scd25"
    o["code"] = {"coding": [{"system": LOCAL, "code": "sil2r-u"}]}
    o["valueQuantity"] = {
        "value": value,
        "unit": "U/mL",
        "system": "http://unitsofmeasure.org",
        "code": "U/mL",
    }
    return o


def ev(catalog: Catalog, *observations: dict[str, Any], **values: float) -> Evidence:
    resources = [obs(a, v) for a, v in values.items()] + list(observations)
    return build_evidence(resources, catalog, NOW)


def chart(
    *,
    settings: tuple[SettingFinding, ...] = (),
    drugs: tuple[DrugExposure, ...] = (),
    oxygen: OxygenSupport | None = None,
    vasopressors: tuple[str, ...] = (),
) -> ChartContext:
    pressors = tuple(
        DrugExposure(d, "vasopressor", "administration", NOW, None, "in-progress", None)
        for d in vasopressors
    )
    return ChartContext(settings, drugs + pressors, oxygen, pressors, (), (), None, ())


def o2(level: str, flow: float | None = None, hours_ago: float = 1) -> OxygenSupport:
    return OxygenSupport(level, flow, None, NOW - timedelta(hours=hours_ago))  # type: ignore[arg-type]


CAR_T = SettingFinding("iec", "CAR-T", None, NOW - timedelta(days=3), "car-t", None, 3)


@pytest.mark.parametrize(("temperature", "grade"), [(37.9, 0.0), (38.0, 1.0), (38.1, 1.0)])
def test_astct_fever_boundary(
    book: ScoreBook, catalog: Catalog, temperature: float, grade: float
) -> None:
    result = astct_grade(
        book.astct, ev(catalog, temperature=temperature, sbp=120), chart(oxygen=o2("room-air"))
    )
    assert result.value == grade
    assert result.source == "lee2019" and result.missing == ()


def test_astct_without_temperature_is_unknown_not_a_grade(
    book: ScoreBook, catalog: Catalog
) -> None:
    result = astct_grade(book.astct, ev(catalog, sbp=80), chart(vasopressors=("norepinephrine",)))
    assert result.value is None
    assert "temperature" in result.missing and "fever is required" in result.text


def test_astct_fever_not_required_after_tocilizumab(book: ScoreBook, catalog: Catalog) -> None:
    toci = DrugExposure(
        "tocilizumab",
        "il6-blockade",
        "administration",
        NOW - timedelta(days=1),
        800,
        "completed",
        None,
    )
    afebrile = ev(catalog, temperature=37.0, sbp=85)
    result = astct_grade(
        book.astct, afebrile, chart(settings=(CAR_T,), drugs=(toci,), oxygen=o2("room-air"))
    )
    assert result.value == 2.0 and "fever not required" in result.text
    # a tocilizumab dose before the infusion does not count
    old = DrugExposure(
        "tocilizumab",
        "il6-blockade",
        "administration",
        NOW - timedelta(days=30),
        None,
        "completed",
        None,
    )
    before = astct_grade(
        book.astct, afebrile, chart(settings=(CAR_T,), drugs=(old,), oxygen=o2("room-air"))
    )
    assert before.value == 0.0


def test_astct_fever_waiver_lapses_after_its_window(book: ScoreBook, catalog: Catalog) -> None:
    """Tocilizumab 8 days ago (infusion 20 days ago): hypoxia now without fever is no CRS grade,
    and the grade says the old dose no longer waives fever; 6 days ago it still does."""
    infusion = SettingFinding("iec", "CAR-T", None, NOW - timedelta(days=20), "car-t", None, 20)
    afebrile = ev(catalog, temperature=37.0, sbp=110)
    hours = book.astct.fever_not_required_for_hours
    results = {}
    for days_ago in (hours / 24 + 1, hours / 24 - 1):
        toci = DrugExposure(
            "tocilizumab", "il6-blockade", "administration", NOW - timedelta(days=days_ago),
            800, "completed", None,
        )  # fmt: skip
        where = chart(settings=(infusion,), drugs=(toci,), oxygen=o2("low-flow", 3.0))
        results[days_ago] = astct_grade(book.astct, afebrile, where)
    late, within = results.values()
    assert late.value == 0.0
    assert "no recent tocilizumab" in late.text
    assert "tocilizumab given more than 7 days ago no longer waives fever" in late.text
    assert within.value == 2.0 and "fever not required after tocilizumab" in within.text


def temperatures(catalog: Catalog, *readings: tuple[float, float]) -> Evidence:
    """Temperatures as (hours ago, °C), with a normal blood pressure."""
    observations = [obs("temperature", c, hours_ago=h) for h, c in readings]
    return build_evidence([*observations, obs("sbp", 120)], catalog, NOW)


def test_astct_counts_how_long_the_current_fever_has_lasted(
    book: ScoreBook, catalog: Catalog
) -> None:
    """Spikes with afebrile readings between them are one febrile run; a day without a fever
    ends the run; no fever now is 0 days, no temperature unknown; fevers before the infusion do
    not count."""
    infusion = SettingFinding("iec", "CAR-T", None, NOW - timedelta(days=5), "car-t", None, 5)
    where = chart(settings=(infusion,), oxygen=o2("room-air"))
    spiking = temperatures(catalog, (2, 38.6), (14, 37.2), (24, 38.4), (40, 37.0), (46, 38.3),
                           (68, 39.0), (90, 38.1))  # fmt: skip
    result = astct_grade(book.astct, spiking, where)
    assert result.value == 1.0
    assert result.extra["fever_days"] == pytest.approx(88 / 24)
    assert "febrile for 3.7 days" in result.text
    broken = temperatures(catalog, (2, 38.6), (20, 38.2), (50, 37.0), (80, 39.0))
    assert astct_grade(book.astct, broken, where).extra["fever_days"] == pytest.approx(18 / 24)
    afebrile_now = temperatures(catalog, (2, 37.1), (30, 38.9), (40, 38.5))
    assert astct_grade(book.astct, afebrile_now, where).extra["fever_days"] == 0.0
    assert astct_grade(book.astct, ev(catalog, sbp=120), where).extra["fever_days"] is None
    before = temperatures(catalog, (2, 38.6), (20, 38.2), (40, 38.5), (60, 38.8), (80, 38.1),
                          (100, 38.3), (115, 38.4), (125, 38.4))  # fmt: skip
    days = astct_grade(book.astct, before, where).extra["fever_days"]
    assert days == pytest.approx(113 / 24)
    dropped = astct_grade(book.astct, before, chart(settings=(CAR_T,), oxygen=o2("room-air")))
    assert dropped.extra["fever_days"] == pytest.approx(58 / 24)


def test_astct_fever_duration_is_a_lower_bound_when_older_temperatures_may_be_missing(
    book: ScoreBook, catalog: Catalog
) -> None:
    """Temperatures read only in part (a page limit): a run that reaches back to the oldest
    reading received may have begun earlier, so its length is a lower bound; a run with a day of
    afebrile readings before it, or one the infusion bounds, is not."""
    infusion = SettingFinding("iec", "CAR-T", None, NOW - timedelta(days=5), "car-t", None, 5)
    where = chart(settings=(infusion,), oxygen=o2("room-air"))
    to_oldest = temperatures(catalog, (2, 38.6), (20, 38.4), (40, 38.2))
    whole = astct_grade(book.astct, to_oldest, where)
    assert (whole.extra["fever_days"], whole.extra["fever_days_lower_bound"]) == (
        pytest.approx(38 / 24),
        False,
    )
    cut = astct_grade(book.astct, to_oldest, where, frozenset({"temperature"}))
    assert cut.extra["fever_days"] == pytest.approx(38 / 24)
    assert cut.extra["fever_days_lower_bound"] is True
    assert "febrile for ≥ 1.6 days (older temperatures were not received)" in cut.text
    one = astct_grade(
        book.astct, temperatures(catalog, (2, 38.6)), where, frozenset({"temperature"})
    )
    assert (one.extra["fever_days"], one.extra["fever_days_lower_bound"]) == (0.0, True)
    assert "febrile for an unknown time (older temperatures were not received)" in one.text
    other = astct_grade(book.astct, to_oldest, where, frozenset({"ferritin"}))
    assert other.extra["fever_days_lower_bound"] is False
    settled = temperatures(catalog, (2, 38.6), (20, 38.4), (40, 37.0), (60, 36.9))
    assert (
        astct_grade(book.astct, settled, where, frozenset({"temperature"})).extra[
            "fever_days_lower_bound"
        ]
        is False
    )
    recent = SettingFinding("iec", "CAR-T", None, NOW - timedelta(hours=40), "car-t", None, 1)
    bounded = astct_grade(
        book.astct, to_oldest, chart(settings=(recent,), oxygen=o2("room-air")),
        frozenset({"temperature"}),
    )  # fmt: skip
    assert bounded.extra["fever_days_lower_bound"] is False
    # A reading received from before the infusion proves none after it is missing, though the
    # infusion bounds the run (readings before it are not counted).
    earlier = SettingFinding("iec", "CAR-T", None, NOW - timedelta(hours=30), "car-t", None, 1)
    before_infusion = astct_grade(
        book.astct,
        temperatures(catalog, (2, 38.6), (20, 38.4), (40, 37.0)),
        chart(settings=(earlier,), oxygen=o2("room-air")),
        frozenset({"temperature"}),
    )
    assert before_infusion.extra["fever_days_lower_bound"] is False


def test_astct_with_a_newer_unreadable_device_is_a_lower_bound(
    book: ScoreBook, catalog: Catalog
) -> None:
    febrile = ev(catalog, temperature=39.0, sbp=120)
    read = astct_grade(book.astct, febrile, chart(oxygen=o2("low-flow", 4.0)))
    assert (read.value, read.extra["lower_bound"]) == (2.0, False)
    unread = dataclasses.replace(o2("low-flow", 4.0), device_unread=True)
    result = astct_grade(book.astct, febrile, chart(oxygen=unread))
    assert (result.value, result.extra["lower_bound"]) == (2.0, True)
    assert "ASTCT CRS grade ≥ 2" in result.text and "could not be read" in result.text


def test_astct_counts_drugs_since_the_exposure_not_a_later_crs_diagnosis(
    book: ScoreBook, catalog: Catalog
) -> None:
    """A CRS code charted after the tocilizumab dose does not hide the dose."""
    toci = DrugExposure(
        "tocilizumab", "il6-blockade", "administration", NOW - timedelta(hours=10), 640,
        "completed", None,
    )  # fmt: skip
    coded = SettingFinding("iec", "CRS code", None, NOW - timedelta(hours=4))
    afebrile = ev(catalog, temperature=37.4, sbp=105)
    for settings in ((CAR_T, coded), (coded, CAR_T)):
        where = chart(settings=settings, drugs=(toci,), oxygen=o2("low-flow", 4.0))
        result = astct_grade(book.astct, afebrile, where)
        assert result.value == 2.0 and "fever not required" in result.text


def aged(years: int | None, days: int | None = None) -> ChartContext:
    """A febrile CAR-T patient on room air, of this age (None: no birth date recorded)."""
    where = chart(settings=(CAR_T,), oxygen=o2("room-air"))
    return dataclasses.replace(where, age_years=years, age_days=days)


@pytest.mark.parametrize(
    ("years", "days", "sbp", "grade", "cut_off"),
    [
        (0, 20, 59, 2.0, "< 60 mmHg, term neonates"),  # PALS: term neonates 0-28 days < 60
        (0, 20, 60, 1.0, "< 60 mmHg, term neonates"),
        (0, 29, 69, 2.0, "< 70 mmHg, infants"),  # infants 1-12 months < 70
        (0, 29, 70, 1.0, "< 70 mmHg, infants"),
        (3, None, 75, 2.0, "< 76 mmHg, children 1-10"),  # 1-10 years: < 70 + 2 x age
        (3, None, 76, 1.0, "< 76 mmHg, children 1-10"),
        (3, None, 86, 1.0, "< 76 mmHg, children 1-10"),  # the reviewer's normal-for-age child
        (9, None, 87, 2.0, "< 88 mmHg, children 1-10"),
        (10, None, 89, 2.0, "< 90 mmHg, children 10 years"),  # 10 years and older < 90
        (17, None, 90, 1.0, "< 90 mmHg, children 10 years"),
    ],
)
def test_astct_judges_a_childs_blood_pressure_by_the_pals_band_for_age(
    book: ScoreBook,
    catalog: Catalog,
    years: int,
    days: int | None,
    sbp: float,
    grade: float,
    cut_off: str,
) -> None:
    result = astct_grade(book.astct, ev(catalog, temperature=38.6, sbp=sbp), aged(years, days))
    assert result.value == grade
    assert f"systolic {cut_off}" in result.text and "PALS, AHA 2010" in result.text


def test_a_birth_year_alone_takes_the_band_of_the_oldest_age_it_allows(
    book: ScoreBook, catalog: Catalog
) -> None:
    """Born this year: 0 days old at the youngest, which would be the neonates' < 60; the
    oldest age it allows (here 300 days) is an infant's, < 70, so a systolic 65 is hypotension."""
    where = dataclasses.replace(aged(0, 0), age_at_least=True, oldest_age=(0, 300))
    result = astct_grade(book.astct, ev(catalog, temperature=38.6, sbp=65), where)
    assert result.value == 2.0
    assert "systolic < 70 mmHg, infants" in result.text
    assert "the band of the oldest age its birth date allows" in result.text


def test_astct_reads_only_systolic_pressure_in_a_child(book: ScoreBook, catalog: Catalog) -> None:
    """PALS has no mean-pressure cut-off: a child's mean pressure alone leaves the blood
    pressure unknown (a lower bound), where an adult's mean 60 is hypotension."""
    child = astct_grade(book.astct, ev(catalog, temperature=38.6, map=60), aged(3))
    assert child.value == 1.0 and child.extra["lower_bound"] is True
    assert "blood pressure" in child.missing
    adult = astct_grade(book.astct, ev(catalog, temperature=38.6, map=60), aged(40))
    assert adult.value == 2.0 and adult.extra["lower_bound"] is False


def test_astct_keeps_the_adult_cut_offs_for_adults_and_unknown_ages(
    book: ScoreBook, catalog: Catalog
) -> None:
    """Systolic 86 is hypotension at 18 and over, and when no birth date is recorded; only the
    latter says the age is unknown (it never claims the patient is an adult)."""
    febrile = ev(catalog, temperature=38.6, sbp=86)
    adult = astct_grade(book.astct, febrile, aged(18))
    assert adult.value == 2.0 and "PALS" not in adult.text and "age" not in adult.text
    unknown = astct_grade(book.astct, febrile, aged(None))
    assert unknown.value == 2.0
    assert "adult cut-offs applied, systolic < 90 mmHg or mean < 65 mmHg" in unknown.text
    assert "the patient's age is not recorded" in unknown.text


def _load_error(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, old: str, new: str, match: str
) -> None:
    from cds_service.rules import scores

    text = scores._text()
    assert text.count(old) == 1
    monkeypatch.setattr(scores, "_text", lambda: text.replace(old, new))
    scores.load_scores.cache_clear()
    try:
        with pytest.raises(ScoresError, match=match):
            scores.load_scores(catalog)
    finally:
        monkeypatch.undo()
        scores.load_scores.cache_clear()


def test_child_age_bands_must_reach_the_adult_age(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A band table leaving some children without a cut-off stops start-up."""
    _load_error(
        catalog, monkeypatch, "below_years: 18, value: 90", "below_years: 16, value: 90",
        r"scores.yaml: line \d+: .*adult_from_years",
    )  # fmt: skip


@pytest.mark.parametrize(("sbp", "grade"), [(89, 2.0), (90, 1.0), (91, 1.0)])
def test_astct_hypotension_boundary(
    book: ScoreBook, catalog: Catalog, sbp: float, grade: float
) -> None:
    result = astct_grade(
        book.astct, ev(catalog, temperature=39, sbp=sbp), chart(oxygen=o2("room-air"))
    )
    assert result.value == grade


def test_astct_mean_pressure_boundary(book: ScoreBook, catalog: Catalog) -> None:
    low = astct_grade(book.astct, ev(catalog, temperature=39, map=64), chart(oxygen=o2("room-air")))
    at = astct_grade(book.astct, ev(catalog, temperature=39, map=65), chart(oxygen=o2("room-air")))
    assert (low.value, at.value) == (2.0, 1.0)


@pytest.mark.parametrize(
    ("pressors", "grade"),
    [
        ((), 1.0),
        (("norepinephrine",), 3.0),
        (("norepinephrine", "vasopressin"), 3.0),  # vasopressin is not a second vasopressor
        (("norepinephrine", "epinephrine"), 4.0),
    ],
)
def test_astct_vasopressors(
    book: ScoreBook, catalog: Catalog, pressors: tuple[str, ...], grade: float
) -> None:
    result = astct_grade(
        book.astct,
        ev(catalog, temperature=39, sbp=110),
        chart(oxygen=o2("room-air"), vasopressors=pressors),
    )
    assert result.value == grade


@pytest.mark.parametrize(
    ("level", "grade"),
    [
        ("room-air", 1.0),
        ("low-flow", 2.0),
        ("high-flow", 3.0),
        ("mask", 3.0),
        ("non-rebreather", 3.0),
        ("venturi", 3.0),
        ("positive-pressure", 4.0),
    ],
)
def test_astct_oxygen(book: ScoreBook, catalog: Catalog, level: str, grade: float) -> None:
    result = astct_grade(book.astct, ev(catalog, temperature=39, sbp=110), chart(oxygen=o2(level)))
    assert result.value == grade


def test_astct_hypoxia_on_room_air_is_an_unknown_oxygen_need_not_grade_0(
    book: ScoreBook, catalog: Catalog
) -> None:
    """SpO2 89 % on room air may need oxygen the chart does not show yet: the grade is a lower
    bound (grade 1 at least), so a rule needing grade 2 cannot be judged rather than false. It
    is never graded 2 from the saturation alone (ASTCT grades the support given, and a
    patient's usual saturation may be this low)."""
    hypoxic = astct_grade(
        book.astct, ev(catalog, temperature=39, sbp=110, spo2=89), chart(oxygen=o2("room-air"))
    )
    assert (hypoxic.value, hypoxic.extra["lower_bound"]) == (1.0, True)
    assert hypoxic.missing == ("oxygen support given (SpO₂ 89 % on room air)",)
    assert "SpO₂ 89 % on room air: it may need oxygen; chart the support given" in hypoxic.text
    cut = book.astct.hypoxia_on_room_air.value
    normal = astct_grade(
        book.astct, ev(catalog, temperature=39, sbp=110, spo2=cut), chart(oxygen=o2("room-air"))
    )
    assert (normal.value, normal.extra["lower_bound"]) == (1.0, False)
    on_oxygen = astct_grade(
        book.astct, ev(catalog, temperature=39, sbp=110, spo2=89), chart(oxygen=o2("low-flow", 2.0))
    )
    assert (on_oxygen.value, on_oxygen.extra["lower_bound"]) == (2.0, False)


def test_a_lapsed_fever_waiver_keeps_the_caveat_for_hypoxia_on_room_air(
    book: ScoreBook, catalog: Catalog
) -> None:
    """Afebrile, 9 days after tocilizumab and dexamethasone (past the waiver's window), SpO2
    86 % on room air: no CRS grade, but the grade says the hypoxia may be CRS they mask."""
    infusion = SettingFinding("iec", "CAR-T", None, NOW - timedelta(days=12), "car-t", None, 12)
    late = NOW - timedelta(days=9)
    drugs = tuple(
        DrugExposure(d, drug_class, "administration", late, None, "completed", None)
        for d, drug_class in (("tocilizumab", "il6-blockade"), ("dexamethasone", "corticosteroid"))
    )
    result = astct_grade(
        book.astct,
        ev(catalog, temperature=37.1, sbp=118, spo2=86),
        chart(settings=(infusion,), drugs=drugs, oxygen=o2("room-air", hours_ago=2)),
    )
    assert result.value == 0.0
    assert "dexamethasone and tocilizumab given more than 7 days ago no longer waive fever" in (
        result.text
    )
    assert "the hypoxia without fever may still be CRS that they mask" in result.text


def test_astct_saturation_older_than_the_room_air_record_is_not_read_as_on_room_air(
    book: ScoreBook, catalog: Catalog
) -> None:
    """A low saturation measured before the room-air record may have been on other support
    (oxygen since weaned): only one measured at or after the record leaves the grade open."""
    older = astct_grade(
        book.astct,
        ev(catalog, obs("spo2", 89, hours_ago=3), temperature=39, sbp=110),
        chart(oxygen=o2("room-air", hours_ago=1)),
    )
    assert (older.value, older.extra["lower_bound"]) == (1.0, False)
    newer = astct_grade(
        book.astct,
        ev(catalog, obs("spo2", 89, hours_ago=1), temperature=39, sbp=110),
        chart(oxygen=o2("room-air", hours_ago=3)),
    )
    assert (newer.value, newer.extra["lower_bound"]) == (1.0, True)


def test_astct_unknown_support_gives_a_lower_bound(book: ScoreBook, catalog: Catalog) -> None:
    result = astct_grade(
        book.astct, ev(catalog, temperature=39), chart(oxygen=o2("low-flow", hours_ago=20))
    )
    assert result.value == 1.0 and result.extra["lower_bound"] is True
    assert set(result.missing) == {"blood pressure", "oxygen support"}
    assert "grade ≥ 1" in result.text


def test_hlh2004_counts_met_and_lists_unknown(book: ScoreBook, catalog: Catalog) -> None:
    evidence = ev(
        catalog,
        sil2r_u(2400),
        temperature=38.5,
        hemoglobin=89,
        platelets=99,
        neutrophils=2,
        triglycerides=3.0,
        ferritin=500,
    )
    result = criteria_count(book.hlh2004, "hlh2004", evidence)
    assert result.value == 5.0 and result.extra["reached"] is True
    assert set(result.missing) == {
        "Splenomegaly",
        "Haemophagocytosis (marrow, spleen or lymph nodes)",
        "Low or absent NK-cell activity",
    }


@pytest.mark.parametrize(
    ("values", "met"),
    [
        ({"temperature": 38.4}, 0.0),
        ({"temperature": 38.5}, 1.0),
        ({"ferritin": 499}, 0.0),
        ({"ferritin": 500}, 1.0),
        ({"triglycerides": 2.99, "fibrinogen": 1.51}, 0.0),
        ({"triglycerides": 2.99, "fibrinogen": 1.5}, 1.0),
        ({"hemoglobin": 90, "platelets": 99, "neutrophils": 0.9}, 1.0),
        ({"hemoglobin": 90, "platelets": 100, "neutrophils": 0.9}, 0.0),
        ({"crp": 300}, 0.0),  # CRP is not an HLH-2004 criterion
    ],
)
def test_hlh2004_boundaries(
    book: ScoreBook, catalog: Catalog, values: dict[str, float], met: float
) -> None:
    assert criteria_count(book.hlh2004, "hlh2004", ev(catalog, **values)).value == met


def test_hlh2004_scd25_in_pg_per_ml_is_not_the_u_per_ml_criterion(
    book: ScoreBook, catalog: Catalog
) -> None:
    below, at = ev(catalog, sil2r_u(2399)), ev(catalog, sil2r_u(2400))
    assert criteria_count(book.hlh2004, "hlh2004", below).value == 0.0
    assert criteria_count(book.hlh2004, "hlh2004", at).value == 1.0


def test_hlh2004_cannot_be_excluded_while_criteria_are_unknown(
    book: ScoreBook, catalog: Catalog
) -> None:
    result = criteria_count(book.hlh2004, "hlh2004", ev(catalog, ferritin=800, temperature=39))
    assert result.value == 2.0 and result.extra["reached"] is None
    none_known = criteria_count(book.hlh2004, "hlh2004", ev(catalog))
    assert none_known.value == 0.0 and len(none_known.missing) == 8


@pytest.mark.parametrize(
    ("analyte", "value", "points"),
    [
        ("temperature", 38.3, 0), ("temperature", 38.4, 33),
        ("temperature", 39.4, 33), ("temperature", 39.5, 49),
        ("ferritin", 1999, 0), ("ferritin", 2000, 35),
        ("ferritin", 6000, 35), ("ferritin", 6001, 50),
        ("triglycerides", 1.49, 0), ("triglycerides", 1.5, 44),
        ("triglycerides", 4.0, 44), ("triglycerides", 4.01, 64),
        ("fibrinogen", 2.51, 0), ("fibrinogen", 2.5, 30),
        ("ast", 29, 0), ("ast", 30, 19),
    ],
)  # fmt: skip
def test_hscore_bands(
    book: ScoreBook, catalog: Catalog, analyte: str, value: float, points: float
) -> None:
    result = hscore(book.hscore, ev(catalog, **{analyte: value}))
    item = next(i for i in result.inputs if i.id == analyte)
    assert item.points == points and result.value == points


@pytest.mark.parametrize(
    ("values", "points"),
    [
        ({"hemoglobin": 93, "leukocytes": 5.1, "platelets": 111}, 0),
        ({"hemoglobin": 92, "leukocytes": 5.1, "platelets": 111}, 0),
        ({"hemoglobin": 92, "leukocytes": 5.0, "platelets": 111}, 24),
        ({"hemoglobin": 92, "leukocytes": 5.0, "platelets": 110}, 34),
    ],
)
def test_hscore_cytopenias(
    book: ScoreBook, catalog: Catalog, values: dict[str, float], points: float
) -> None:
    result = hscore(book.hscore, ev(catalog, **values))
    assert next(i for i in result.inputs if i.id == "cytopenias").points == points


def test_hscore_unknown_items_count_zero_and_are_listed(book: ScoreBook, catalog: Catalog) -> None:
    evidence = ev(
        catalog,
        temperature=39.5,
        ferritin=7000,
        triglycerides=4.5,
        fibrinogen=2.0,
        ast=50,
        hemoglobin=80,
        leukocytes=2,
        platelets=50,
    )
    result = hscore(book.hscore, evidence)
    assert result.value == 49 + 50 + 64 + 30 + 19 + 34
    assert set(result.missing) == {
        "Known underlying immunosuppression",
        "Organomegaly",
        "Haemophagocytosis on bone marrow aspirate",
    }
    assert result.extra["upper_bound"] == result.value + 18 + 38 + 35
    assert result.text.startswith("HScore ≥ 246 (cut-off 169; probability ≥ 99 %)")
    assert result.extra["probability"] == pytest.approx(99.0)


def test_hscore_text_says_lower_bound_and_probability(book: ScoreBook, catalog: Catalog) -> None:
    low = hscore(book.hscore, ev(catalog, temperature=38.5))
    assert low.text.startswith("HScore ≥ 33 (cut-off 169; probability < 1 %)")
    mid = hscore(book.hscore, ev(catalog, temperature=39.5, ferritin=7000, triglycerides=4.5))
    assert mid.text.startswith("HScore ≥ 163 (cut-off 169; probability ≥ 44 %)")


def test_hscore_with_one_cytopenia_line_unknown_is_a_range(
    book: ScoreBook, catalog: Catalog
) -> None:
    result = hscore(book.hscore, ev(catalog, hemoglobin=80, platelets=50))
    assert result.value == 24
    assert result.extra["upper_bound"] == 24 + (34 - 24) + 18 + 38 + 35 + 49 + 50 + 64 + 30 + 19


@pytest.mark.parametrize(
    ("points", "probability"), [(90, 1), (169, 52.6), (170, 54), (175, 62), (250, 99), (300, 99)]
)
def test_hscore_probability_from_the_papers_table(
    book: ScoreBook, points: float, probability: float
) -> None:
    assert hscore_probability(book.hscore, points) == pytest.approx(probability)


STILLS = SettingFinding("stills", "Condition sJIA (M08.2*)", None, NOW)


@pytest.mark.parametrize(
    ("values", "value"),
    [
        ({"temperature": 38.5, "ferritin": 685, "platelets": 181, "ast": 49}, 1.0),
        ({"temperature": 38.5, "ferritin": 684, "platelets": 181, "ast": 49}, 0.0),
        (
            {
                "temperature": 38.5,
                "ferritin": 685,
                "platelets": 182,
                "ast": 48,
                "triglycerides": 1.76,
                "fibrinogen": 3.61,
            },
            0.0,
        ),
        ({"temperature": 38.5, "ferritin": 685, "triglycerides": 1.77, "fibrinogen": 3.6}, 1.0),
        ({"temperature": 37.9, "ferritin": 5000, "platelets": 100, "ast": 100}, 0.0),
    ],
)
def test_mas2016_boundaries(
    book: ScoreBook, catalog: Catalog, values: dict[str, float], value: float
) -> None:
    result = mas2016(book.mas2016, ev(catalog, **values), chart(settings=(STILLS,)))
    assert result.value == value


def test_mas2016_needs_the_sjia_diagnosis(book: ScoreBook, catalog: Catalog) -> None:
    evidence = ev(catalog, temperature=39, ferritin=5000, platelets=100, ast=100)
    result = mas2016(book.mas2016, evidence, EMPTY_CHART)
    assert result.value is None and "not applied" in result.text


def test_mas2016_applies_to_suspected_sjia(book: ScoreBook, catalog: Catalog) -> None:
    suspected = ChartContext((), (), None, (), (), (), None, (), suspected=(STILLS,))
    evidence = ev(catalog, temperature=39, ferritin=5000, platelets=100, ast=100)
    assert mas2016(book.mas2016, evidence, suspected).value == 1.0


def test_mas2016_undecided_with_missing_labs(book: ScoreBook, catalog: Catalog) -> None:
    result = mas2016(
        book.mas2016,
        ev(catalog, temperature=39, ferritin=5000, platelets=100),
        chart(settings=(STILLS,)),
    )
    assert result.value is None
    assert "2 of platelets, AST, triglycerides, fibrinogen" in result.missing


@pytest.mark.parametrize(
    ("values", "met"),
    [
        ({"temperature": 38.0}, 0), ({"temperature": 38.1}, 1),
        ({"ferritin": 699}, 0), ({"ferritin": 700}, 1),
        ({"neutrophils": 9.9, "lymphocytes": 1.0}, 0), ({"neutrophils": 10, "lymphocytes": 1.0}, 1),
        ({"ldh": 399, "ast": 99}, 0), ({"ldh": 400}, 1), ({"ast": 100}, 1),
        ({"ddimer": 1.49}, 0), ({"ddimer": 1.5}, 1),
        ({"crp": 149, "il6": 14, "triglycerides": 1.6}, 0), ({"crp": 150}, 1),
        ({"il6": 15}, 1), ({"triglycerides": 1.7}, 1),
    ],
)  # fmt: skip
def test_chis_boundaries(
    book: ScoreBook, catalog: Catalog, values: dict[str, float], met: int
) -> None:
    assert criteria_count(book.chis, "chis", ev(catalog, **values)).value == met


def test_chis_cut_off_and_missing(book: ScoreBook, catalog: Catalog) -> None:
    two = criteria_count(book.chis, "chis", ev(catalog, temperature=39, ferritin=1000))
    assert two.value == 2 and two.extra["reached"] is None and len(two.missing) == 4
    three = criteria_count(book.chis, "chis", ev(catalog, temperature=39, ferritin=1000, crp=200))
    assert three.extra["reached"] is True
    all_known = ev(
        catalog,
        temperature=39,
        ferritin=1000,
        neutrophils=5,
        lymphocytes=1,
        ldh=200,
        ast=20,
        ddimer=0.5,
        crp=10,
        il6=5,
        triglycerides=1,
    )
    assert criteria_count(book.chis, "chis", all_known).extra["reached"] is False


def test_compute_scores_gives_every_score_with_its_source(
    book: ScoreBook, catalog: Catalog
) -> None:
    results = compute_scores(book, ev(catalog, temperature=39), EMPTY_CHART)
    assert set(results) == {"astct", "hlh2004", "hscore", "mas2016", "chis"}
    assert all(r.source in book.sources and r.text for r in results.values())


def test_scores_file_names_a_population_and_what_was_verified(book: ScoreBook) -> None:
    for source in book.sources.values():
        assert source.population and source.verified and source.citation


def test_a_unit_that_is_not_canonical_is_a_load_error_with_a_line(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_error(
        catalog, monkeypatch, "value: 500, unit: ng/mL", "value: 500, unit: ug/dL",
        r"scores.yaml: line \d+: .*canonical unit 'ng/mL'",
    )  # fmt: skip


def test_every_score_names_the_ages_it_holds_for_with_a_known_source(book: ScoreBook) -> None:
    for name in ("astct", "hlh2004", "hscore", "mas2016", "chis"):
        ages = getattr(book, name).ages
        assert ages.population and ages.source in book.sources
    # HScore was derived in adults; HLH-2004 and MAS-2016 (Still's disease) hold at all ages.
    assert book.hscore.ages.min_years == 18 and book.hscore.ages.outside
    assert book.hlh2004.ages.min_years is None and book.mas2016.ages.min_years is None


def test_compute_scores_carries_each_scores_ages(book: ScoreBook, catalog: Catalog) -> None:
    results = compute_scores(book, ev(catalog, temperature=39), EMPTY_CHART)
    assert results["hscore"].ages == book.hscore.ages
    assert all(r.ages is not None for r in results.values())


def test_an_age_limit_without_what_applies_instead_is_a_load_error(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_error(
        catalog, monkeypatch,
        "      outside: no paediatric cut-off is validated\n", "",
        r"scores.yaml: line \d+: .*`min_years` and `outside` go together",
    )  # fmt: skip


def test_an_age_limit_below_one_year_is_a_load_error(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_error(
        catalog, monkeypatch, "      min_years: 18\n      source: fardet2014",
        "      min_years: 0\n      source: fardet2014", r"scores.yaml: line \d+: .*min_years",
    )  # fmt: skip


def test_an_unknown_ages_source_is_a_load_error(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_error(
        catalog, monkeypatch, "      min_years: 18\n      source: fardet2014",
        "      min_years: 18\n      source: nobody2099",
        r"scores.yaml: line \d+: .*unknown source 'nobody2099'",
    )  # fmt: skip


def test_a_score_without_ages_is_a_load_error(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_error(
        catalog, monkeypatch,
        "    ages:\n      source: henter2007\n", "    agez:\n      source: henter2007\n",
        r"scores.yaml: line \d+: .*ages",
    )  # fmt: skip
