"""The rules of each clinical setting, on hand-built charts, labs and scores (no HTTP)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from cds_service.context.models import EMPTY_CHART, ChartContext
from cds_service.evidence import build_evidence
from cds_service.fhir.draft_orders import medication_orders
from cds_service.rules.assessment import Assessment, ScoreView
from cds_service.rules.engine import assess
from cds_service.rules.loader import Rules
from cds_service.rules.orders import OrderFinding, judge_orders
from cds_service.runtime import Runtime
from tests.clinical.fhir import order
from tests.evidence.observation_builders import AS_OF, observation, quantity
from tests.rules.charts import chart, finding, given

UNITS = {
    "il6": "pg/mL", "ifng": "pg/mL", "il18": "pg/mL", "cxcl9": "pg/mL", "ferritin": "ng/mL",
    "crp": "mg/L", "mhla_dr": "{molecules}/{cell}", "neutrophils": "10*9/L",
    "platelets": "10*9/L", "fibrinogen": "g/L", "alt": "U/L", "pct": "ng/mL",
    "temperature": "Cel", "triglycerides": "mmol/L",
}  # fmt: skip


def score(score_id: str, value: float | None, missing: tuple[str, ...] = ()) -> ScoreView:
    return ScoreView(id=score_id, label=score_id, value=value, text=f"{score_id} {value}",
                     missing=missing)  # fmt: skip


def assessed(
    runtime: Runtime,
    where: ChartContext = EMPTY_CHART,
    scores: tuple[ScoreView, ...] = (),
    *,
    hours_ago: float = 0,
    **values: float,
) -> Assessment:
    resources = [
        observation(analyte, id=f"obs-{i}", valueQuantity=quantity(value, UNITS[analyte]))
        for i, (analyte, value) in enumerate(values.items())
    ]
    return assess(build_evidence(resources, runtime.catalog, AS_OF), runtime.rules, where, scores)


def advice(result: Assessment) -> list[tuple[str | None, str]]:
    return [(item.drug or item.rule, item.status) for item in result.advice]


CART_DAY3 = chart(finding("iec", kind="car-t", day=3))
STORM = {"il6": 2000, "ifng": 500, "ferritin": 6000}  # the CAR-T day 3


def test_car_t_grade_2_is_tocilizumab_whatever_the_cytokines(runtime: Runtime) -> None:
    result = assessed(runtime, CART_DAY3, (score("astct", 2),), **STORM)
    assert result.setting is not None and result.setting.heading == "CAR-T/bispecific, day 3"
    assert result.state is not None and result.state.id == "crs"
    assert advice(result) == [("tocilizumab", "suggest")]
    # Sepsis rules are not applied: ferritin 6,000 does not switch the IL-6 axis off.
    assert result.axis("il6").excluded_by == ()


def test_car_t_grade_1_drafts_nothing(runtime: Runtime) -> None:
    result = assessed(runtime, CART_DAY3, (score("astct", 1),), **STORM)
    assert result.state is not None and result.state.id == "crs"
    assert result.advice == ()


def test_car_t_without_a_grade_says_so_instead_of_drafting(runtime: Runtime) -> None:
    result = assessed(runtime, CART_DAY3, (score("astct", None, ("temperature",)),), **STORM)
    assert result.state is None and result.advice == ()
    assert any("cannot be judged" in line and "temperature" in line for line in result.undecided)


def test_car_t_grade_3_adds_dexamethasone(runtime: Runtime) -> None:
    result = assessed(runtime, CART_DAY3, (score("astct", 3),), **STORM)
    assert advice(result) == [("tocilizumab", "suggest"), ("dexamethasone", "suggest")]


def test_car_t_not_responding_to_two_doses(runtime: Runtime) -> None:
    """Re-dosing is within the label; rising IL-6 after tocilizumab is the drug's effect."""
    where = chart(
        finding("iec", kind="car-t", day=3),
        drugs=(given("tocilizumab", 22), given("tocilizumab", 10)),
    )
    result = assessed(runtime, where, (score("astct", 2),), **STORM)
    assert advice(result) == [("tocilizumab", "suggest"), ("dexamethasone", "suggest")]
    il6 = next(m for m in result.axis("il6").pivotal if m.analyte == "il6")
    assert il6.state == "after-drug" and not result.axis("il6").elevated
    assert any("after tocilizumab" in note for note in result.notes)


@pytest.mark.parametrize(
    ("hours", "finding_text"),
    [((23, 14, 5), "3 doses"), ((70, 60, 50, 40), "4 doses"), ((6,), "less than 8 hours")],
)
def test_tocilizumab_beyond_the_label_is_a_caution(
    runtime: Runtime, hours: tuple[int, ...], finding_text: str
) -> None:
    where = chart(
        finding("iec", kind="car-t", day=3),
        drugs=tuple(given("tocilizumab", h) for h in hours),
    )
    result = assessed(runtime, where, (score("astct", 2),), **STORM)
    first = result.advice[0]
    assert (first.drug, first.status) == ("tocilizumab", "caution")
    assert any(finding_text in text for text in first.findings)


def test_recorded_allergy_removes_the_drug(runtime: Runtime) -> None:
    where = chart(finding("iec", kind="car-t", day=3), allergies=("tocilizumab",))
    result = assessed(runtime, where, (score("astct", 2),), **STORM)
    assert advice(result) == [("tocilizumab", "removed")]


def test_iec_hs_features_advise_and_draft_nothing_by_default(runtime: Runtime) -> None:
    where = chart(finding("iec", kind="car-t", day=14))
    result = assessed(
        runtime, where, (score("astct", 0),), ferritin=15000, platelets=30, fibrinogen=1.1
    )
    assert result.state is not None and result.state.id == "iechs"
    assert advice(result) == [("iechs-evidence", "advise")]  # anakinra is off-label, unverified
    assert result.advice[0].verify  # marked for verification
    assert "ferritin-iechs" in result.decisive  # the card shows the ferritin that fired
    assert "ferritin-iechs" in {m.marker for m in result.values_used()}


def test_iec_hs_anakinra_is_a_hospital_option(runtime: Runtime) -> None:
    rules = runtime.rules
    option = rules.options["iec_hs_anakinra"].model_copy(update={"value": True})
    chosen = dataclasses.replace(rules, options={**rules.options, "iec_hs_anakinra": option})
    resources = [
        observation(a, id=a, valueQuantity=quantity(v, UNITS[a]))
        for a, v in (("ferritin", 15000), ("fibrinogen", 1.1))
    ]
    evidence = build_evidence(resources, runtime.catalog, AS_OF)
    where = chart(finding("iec", kind="car-t", day=14))
    result = assess(evidence, chosen, where, (score("astct", 0),))
    assert [(a.drug, a.status) for a in result.advice] == [("anakinra", "suggest")]


def test_iec_hs_features_at_grade_1_come_before_crs(runtime: Runtime) -> None:
    """A febrile HLH-like picture is not "CRS grade 1: no action"."""
    where = chart(finding("iec", kind="car-t", day=14))
    result = assessed(runtime, where, (score("astct", 1),), ferritin=15000, alt=260)
    assert result.state is not None and result.state.id == "iechs"
    result = assessed(runtime, where, (score("astct", 2),), ferritin=15000, alt=260)
    assert result.state is not None and result.state.id == "crs"  # grade 2: tocilizumab
    assert advice(result)[0] == ("tocilizumab", "suggest")


def test_expected_post_car_t_counts_and_ferritin_are_no_iec_hs(runtime: Runtime) -> None:
    where = chart(finding("iec", kind="car-t", day=1))
    result = assessed(runtime, where, (score("astct", 0),), ferritin=900, neutrophils=0.1)
    assert result.state is None and result.advice == ()


def test_the_newest_exposure_anchors_the_setting_and_the_tocilizumab_count(
    runtime: Runtime,
) -> None:
    """Day N and the label's dose limits count within the current exposure: doses for a CRS
    after an earlier bispecific dose do not count against a new episode."""
    old_doses = tuple(given("tocilizumab", h, "il6-blockade") for h in (480, 471, 456, 447))
    where = chart(
        finding("iec", kind="bispecific", day=21),
        finding("iec", kind="bispecific", day=1),
        drugs=old_doses,
    )
    result = assessed(runtime, where, (score("astct", 2),), il6=600, crp=120)
    assert result.setting is not None and result.setting.heading == "CAR-T/bispecific, day 1"
    assert result.facts["tocilizumab_doses_total"] == 0
    assert advice(result) == [("tocilizumab", "suggest")]


def test_a_lower_bound_crs_grade_leaves_higher_grade_rules_unknown(runtime: Runtime) -> None:
    """Grade "≥ 1" (no blood pressure or oxygen support): the CRS state holds, tocilizumab
    (grade ≥ 2) is unknown, not false, and the assessment says what was missing."""
    bound = ScoreView(id="astct", label="ASTCT", value=1, text="ASTCT CRS grade ≥ 1",
                      missing=("blood pressure", "oxygen support"), lower_bound=True)  # fmt: skip
    result = assessed(runtime, CART_DAY3, (bound,), ferritin=6000, alt=250)
    assert result.state is not None and result.state.id == "crs"  # IEC-HS at "<= 1": unknown
    assert result.advice == ()
    assert result.pending and "blood pressure, oxygen support" in result.pending[0]
    exact = assessed(runtime, CART_DAY3, (score("astct", 1),), ferritin=6000, alt=250)
    assert exact.state is not None and exact.state.id == "iechs"


def test_car_t_rules_win_over_a_recorded_sepsis(runtime: Runtime) -> None:
    where = chart(finding("iec", kind="car-t", day=3), finding("sepsis"), infections=("sepsis",))
    result = assessed(runtime, where, (score("astct", 2),), **STORM)
    assert result.setting is not None and result.setting.setting == "iec"
    assert [s.setting for s in result.other_settings] == ["sepsis"]
    assert advice(result) == [("tocilizumab", "suggest")]  # no infection limit for CRS


COVID_O2 = chart(finding("covid19"), oxygen="low-flow")


def test_covid_recovery_eligibility(runtime: Runtime) -> None:
    result = assessed(runtime, COVID_O2, crp=150)
    # Tocilizumab or baricitinib as the add-on, never both (NIH; Ontario Science Table 2022).
    assert advice(result) == [
        ("dexamethasone", "suggest"), ("tocilizumab", "suggest"), ("baricitinib", "alternative"),
    ]  # fmt: skip


def test_covid_has_no_hla_dr_or_ferritin_veto(runtime: Runtime) -> None:
    result = assessed(runtime, COVID_O2, crp=150, ferritin=6000, mhla_dr=2500)
    assert ("tocilizumab", "suggest") in advice(result)


def test_covid_without_hypoxia_gets_nothing(runtime: Runtime) -> None:
    where = chart(finding("covid19"), oxygen="room-air")
    assert assessed(runtime, where, crp=150).advice == ()


def test_covid_crp_below_75_is_dexamethasone_only(runtime: Runtime) -> None:
    assert advice(assessed(runtime, COVID_O2, crp=50)) == [("dexamethasone", "suggest")]


def test_covid_patient_on_dexamethasone_is_not_offered_it_again(runtime: Runtime) -> None:
    where = chart(finding("covid19"), oxygen="low-flow", drugs=(given("dexamethasone", 20),))
    assert advice(assessed(runtime, where, crp=150))[:2] == [
        ("dexamethasone", "already-given"), ("tocilizumab", "suggest"),
    ]  # fmt: skip


def test_covid_with_another_infection_cautions_tocilizumab(runtime: Runtime) -> None:
    where = chart(finding("covid19"), oxygen="low-flow", infections=("bacterial-pneumonia",))
    result = assessed(runtime, where, crp=150)
    assert ("tocilizumab", "caution") in advice(result)
    assert ("dexamethasone", "suggest") in advice(result)


def test_covid_label_counts(runtime: Runtime) -> None:
    result = assessed(runtime, COVID_O2, crp=150, neutrophils=0.6)
    toci = next(a for a in result.advice if a.drug == "tocilizumab")
    assert toci.status == "caution" and "neutrophils" in toci.findings[0]


SEPSIS = chart(finding("sepsis"), infections=("sepsis",))


def test_sepsis_mals_shows_the_evidence_and_drafts_nothing(runtime: Runtime) -> None:
    result = assessed(runtime, SEPSIS, ferritin=6200, il6=900)
    assert result.state is not None and result.state.id == "mals"
    assert advice(result) == [("sepsis-mals-evidence", "advise")]


def test_sepsis_mals_anakinra_is_a_hospital_option(runtime: Runtime) -> None:
    rules = runtime.rules
    option = rules.options["sepsis_mals_anakinra"].model_copy(update={"value": True})
    chosen = dataclasses.replace(rules, options={**rules.options, "sepsis_mals_anakinra": option})
    evidence = build_evidence(
        [observation("ferritin", id="f", valueQuantity=quantity(6200, "ng/mL"))],
        runtime.catalog,
        AS_OF,
    )
    result = assess(evidence, chosen, SEPSIS)
    assert [(a.drug, a.status) for a in result.advice] == [("anakinra", "suggest")]


def test_sepsis_immunoparalysis(runtime: Runtime) -> None:
    result = assessed(runtime, SEPSIS, mhla_dr=3000, ferritin=1200, il6=150)
    assert result.state is not None and result.state.id == "immunoparalysis"
    assert [a.drug for a in result.advice] == [None]  # an action, no drug


STILLS = chart(finding("stills"))


def test_stills_mas_glucocorticoids_and_anakinra(runtime: Runtime) -> None:
    result = assessed(runtime, STILLS, (score("mas2016", 1),), il18=22000, ferritin=5000)
    assert advice(result) == [("methylprednisolone", "suggest"), ("anakinra", "suggest")]


def test_stills_emapalumab_only_after_glucocorticoids(runtime: Runtime) -> None:
    pulse = dataclasses.replace(given("methylprednisolone", 96, "corticosteroid"), dose_mg=1000)
    where = chart(finding("stills"), drugs=(pulse,))
    result = assessed(runtime, where, (score("mas2016", 1),), ferritin=5000)
    statuses = dict(advice(result))
    assert statuses["methylprednisolone"] == "already-given"
    assert statuses["emapalumab"] == "caution"  # latent TB not recorded
    emapalumab = next(a for a in result.advice if a.drug == "emapalumab")
    assert "latent tuberculosis" in emapalumab.findings[0]


@pytest.mark.parametrize(
    ("daily_mg", "kg", "given_for_mas"),
    [
        (5, 30, False),  # maintenance prednisone: no MAS treatment
        (30, 30, True),  # 1 mg/kg a day
        (5, None, None),  # no weight: a child's 5 mg may be high; cannot be told
        (60, None, True),  # high at any weight
    ],
)
def test_only_a_mas_treatment_dose_counts_as_glucocorticoids_given(
    runtime: Runtime, daily_mg: float, kg: float | None, given_for_mas: bool | None
) -> None:
    """Emapalumab's "inadequate response to glucocorticoids" is to a MAS treatment dose, not
    to home prednisone started long ago."""
    course = dataclasses.replace(
        given("prednisone", 24 * 700, "corticosteroid", source="statement"),
        daily_mg=daily_mg,
        ongoing=True,
        until=AS_OF,
    )
    # The body weight as read_chart receives it from the decision (the current dosing weight).
    where = dataclasses.replace(chart(finding("stills"), drugs=(course,)), weight_kg=kg)
    result = assessed(runtime, where, (score("mas2016", 1),), ferritin=5000)
    assert result.facts["corticosteroid_given"] is given_for_mas
    emapalumab = [a for a in result.advice if a.drug == "emapalumab"]
    if given_for_mas is False:
        assert emapalumab == []  # not an option yet, and an order gets "glucocorticoids first"


@pytest.mark.parametrize(("years", "given_for_mas"), [(40, False), (12, None), (None, None)])
def test_without_a_weight_a_low_dose_is_settled_only_in_a_recorded_adult(
    runtime: Runtime, years: int | None, given_for_mas: bool | None
) -> None:
    """Prednisone 5 mg with no weight: below 1 mg/kg at any adult weight, so an adult's is
    no MAS dose; a child's may be."""
    course = dataclasses.replace(
        given("prednisone", 24 * 700, "corticosteroid", source="statement"),
        daily_mg=5,
        ongoing=True,
        until=AS_OF,
    )
    where = dataclasses.replace(chart(finding("stills"), drugs=(course,)), age_years=years)
    result = assessed(runtime, where, (score("mas2016", 1),), ferritin=5000)
    assert result.facts["corticosteroid_given"] is given_for_mas


def test_hlh_first_presentation_is_hlh94(runtime: Runtime) -> None:
    where = chart(finding("hlh", kind="primary"))
    result = assessed(runtime, where, (score("hlh2004", 5),), cxcl9=20000, ferritin=8000)
    assert advice(result) == [("hlh-94", "advise")]
    # Ferritin is no IL-1 marker in HLH: the IFN-γ axis leads alone.
    assert result.subtype == "ifng-driven"


def test_hlh_refractory_primary_names_emapalumab(runtime: Runtime) -> None:
    """Two etoposide doses, the first 17 days ago: HLH-94-type therapy long enough to judge."""
    doses = (given("etoposide", 24 * 17), given("etoposide", 24 * 14))
    where = chart(finding("hlh", kind="primary"), drugs=doses)
    result = assessed(runtime, where, (score("hlh2004", 6),), cxcl9=15000)
    assert advice(result) == [("emapalumab", "caution")]


@pytest.mark.parametrize(
    "doses",
    [
        (24 * 17,),  # one dose, however long ago
        (6, 2),  # HLH-94 day 1
        (24 * 10, 24 * 7),  # ten days on therapy: too early to call it refractory
    ],
)
def test_hlh94_just_started_is_no_emapalumab_case(
    runtime: Runtime, doses: tuple[float, ...]
) -> None:
    drugs = tuple(given("etoposide", hours) for hours in doses)
    where = chart(finding("hlh", kind="primary"), drugs=drugs)
    result = assessed(runtime, where, (score("hlh2004", 6),), cxcl9=15000)
    assert advice(result) == [("hlh-94", "advise")]


def test_a_recorded_primary_hlh_meets_hlh2004_by_itself_when_active(runtime: Runtime) -> None:
    """HLH-2004: a molecular diagnosis, or 5 of 8 (Henter 2007); HScore is not applied. A
    familial HLH is lifelong, and HLH-94 treats active disease: the molecular route needs two
    current inflammatory signs (fever, ferritin, fibrinogen, triglycerides) as well; a fever
    alone is none."""
    where = chart(finding("hlh", kind="primary"))
    scores = (score("hlh2004", 4, ("sil2r",)), score("hscore", 250))
    result = assessed(runtime, where, scores, ferritin=3000, fibrinogen=1.2)
    assert result.state is not None and result.state.id == "hlh-molecular"
    assert result.facts["hlh2004"] is None  # 4 of 8 with sCD25 unknown: the count is undecided
    assert advice(result) == [("hlh-94", "advise")]
    quiet = assessed(runtime, where, (score("hlh2004", 1),), ferritin=80)
    assert quiet.state is None and advice(quiet) == []
    normal = {"ferritin": 150, "fibrinogen": 3.2, "triglycerides": 1.4}
    fever = assessed(runtime, where, (score("hlh2004", 1),), temperature=39.0, **normal)
    assert fever.facts["hlh_active"] is False
    assert fever.state is None and advice(fever) == []


def test_hlh_2004_unknown_items_can_leave_it_undecided(runtime: Runtime) -> None:
    where = chart(finding("hlh"))
    result = assessed(runtime, where, (score("hlh2004", 3, ("splenomegaly", "marrow")),))
    assert result.state is None
    assert any("HLH-2004" in line for line in result.undecided)


def test_unknown_setting_panel_needs_the_diagnostic_bar(runtime: Runtime) -> None:
    met = assessed(runtime, EMPTY_CHART, (score("chis", 3),), ferritin=8000, crp=160)
    assert met.subtype == "multiplex-assay-needed" and met.advice == ()
    below = assessed(runtime, EMPTY_CHART, (score("chis", 2),), ferritin=8000, crp=160)
    assert below.subtype is None


def orders(*drafts: dict[str, Any]) -> list[Any]:
    return [o for d in drafts for o in medication_orders(d)]


def judged(runtime: Runtime, result: Assessment, draft: dict[str, Any]) -> list[OrderFinding]:
    return judge_orders(orders(draft), result, runtime.rules, AS_OF)


@pytest.mark.parametrize(
    "draft",
    [
        order("tocilizumab", "612865"),
        order("dexamethasone", "3264", dose=6),
        order("baricitinib", "2047232", dose=4),
        order("methylprednisolone", "6902", dose=1000),
        order("anakinra", "72435"),
    ],
)
def test_no_mismatch_without_a_recorded_setting(runtime: Runtime, draft: dict[str, Any]) -> None:
    result = assessed(runtime, EMPTY_CHART, (score("chis", 4),), il6=2000, ferritin=9000)
    assert [f.kind for f in judged(runtime, result, draft)] in ([], ["needs-cytokines"])


def test_sepsis_tocilizumab_is_a_sourced_mismatch(runtime: Runtime) -> None:
    result = assessed(runtime, SEPSIS, il6=980, pct=25)
    (found,) = judged(runtime, result, order("tocilizumab", "612865"))
    assert (found.kind, found.rule, found.source) == (
        "mismatch", "sepsis-il6-blockade", "leisman2020",
    )  # fmt: skip


def test_sepsis_card_says_no_il6_blockade_whatever_the_state(runtime: Runtime) -> None:
    """The rule against IL-6 blockade is said on patient-view too, where a high IL-6 seems to
    invite it: with no state found (HLA-DR missing) and in the MALS state alike."""
    for result in (
        assessed(runtime, SEPSIS, il6=980, pct=25),
        assessed(runtime, SEPSIS, ferritin=6200, il6=900),
    ):
        assert [r.rule for r in result.reminders] == ["sepsis-il6-blockade"]
        assert result.reminders[0].source == "leisman2020"
    # Another setting's rule against a drug is not said here.
    crs = assessed(runtime, CART_DAY3, (score("astct", 2),), **STORM)
    assert crs.reminders == ()


def test_crs_with_an_infection_keeps_tocilizumab_drafted_with_the_boxed_warning(
    runtime: Runtime,
) -> None:
    """Tocilizumab is the labelled treatment of CRS whatever infection is recorded beside it:
    the boxed warning is a note beside the draft, never a reason to withhold it."""
    where = chart(finding("iec", kind="car-t", day=3), infections=("sepsis",))
    result = assessed(runtime, where, (score("astct", 2),), **STORM)
    (toci,) = result.advice
    assert (toci.drug, toci.status, toci.drafted) == ("tocilizumab", "suggest", True)
    assert toci.findings == ()
    assert any("active infection" in n and "boxed warning" in n for n in toci.notes)
    (note,) = judged(runtime, result, order("tocilizumab", "612865"))
    assert (note.kind, note.source) == ("label-note", "actemra_label")
    # Below grade 2, or with no grade, the order treats no CRS the rules know of: the boxed
    # warning is a caution there, never the note that the rules do not withhold it.
    for grade in (score("astct", 1), score("astct", None, ("temperature",))):
        below = assessed(runtime, where, (grade,), **STORM)
        (caution,) = judged(runtime, below, order("tocilizumab", "612865"))
        assert (caution.kind, caution.source) == ("caution", "actemra_label")
        assert "ASTCT CRS grade 2 or more is not met or could not be judged" in caution.reason
    # Without an infection recorded there is no note, on the draft or on the order.
    clean = assessed(runtime, CART_DAY3, (score("astct", 2),), **STORM)
    assert clean.advice[0].notes == ()
    assert judged(runtime, clean, order("tocilizumab", "612865")) == []


def test_emapalumab_in_crs_is_a_caution_that_hides_no_label_check(runtime: Runtime) -> None:
    """A caution leaves the order standing, so the label checks still run beside it; a
    mismatch (the order to be removed) still stands alone."""
    crs = assessed(runtime, CART_DAY3, (score("astct", 2),), **STORM)
    found = judged(runtime, crs, order("emapalumab", "2104604"))
    assert [(f.kind, f.rule) for f in found] == [
        ("setting-caution", "iec-emapalumab-in-crs"), ("caution", None),
    ]  # fmt: skip
    assert "latent tuberculosis" in found[1].reason
    stills = chart(finding("stills"))
    first = assessed(runtime, stills, ferritin=9000)
    (alone,) = judged(runtime, first, order("emapalumab", "2104604"))
    assert (alone.kind, alone.rule) == ("mismatch", "stills-emapalumab-before-glucocorticoid")


def test_stress_dose_hydrocortisone_is_never_flagged(runtime: Runtime) -> None:
    result = assessed(runtime, SEPSIS, mhla_dr=3000, ferritin=1200)
    assert judged(runtime, result, order("hydrocortisone", "5492", dose=50, per_day=4)) == []


HIGH_DOSE_STEROID = "sepsis-immunoparalysis-high-dose-steroid"


def high_dose_steroid_as_mismatch(rules: Rules) -> Rules:
    """The rules with the sepsis high-dose corticosteroid rule made a mismatch, as a hospital
    may configure it (the shipped rule is a caution): what a mismatch rule on a dose does."""
    sepsis = rules.settings["sepsis"]
    avoid = [
        rule.model_copy(update={"outcome": "mismatch"}) if rule.id == HIGH_DOSE_STEROID else rule
        for rule in sepsis.avoid
    ]
    settings = {**rules.settings, "sepsis": sepsis.model_copy(update={"avoid": avoid})}
    return dataclasses.replace(rules, settings=settings)


def test_tablet_doses_are_read_from_the_strength(runtime: Runtime) -> None:
    result = assessed(runtime, SEPSIS, mhla_dr=3000, ferritin=1200)
    tablet = order("methylprednisolone 100 MG Oral Tablet", "6902", dose=1, unit="{tbl}")
    (found,) = judged(runtime, result, tablet)
    assert (found.kind, found.rule) == ("setting-caution", HIGH_DOSE_STEROID)
    assert found.daily_dose_prednisone_mg == pytest.approx(125)
    unreadable = order("methylprednisolone", "6902", dose=1, unit="{tbl}")
    # A caution is about a high dose: one that cannot be read says nothing ...
    assert judged(runtime, result, unreadable) == []
    # ... and a mismatch rule says the dose could not be read, and why.
    mismatch_rules = high_dose_steroid_as_mismatch(runtime.rules)
    (unknown,) = judge_orders(orders(unreadable), result, mismatch_rules, AS_OF)
    assert unknown.kind == "dose-unknown" and "no strength" in unknown.reason


def test_covid_without_oxygen_dexamethasone_order_is_flagged(runtime: Runtime) -> None:
    where = chart(finding("covid19"), oxygen="room-air")
    result = assessed(runtime, where, crp=40)
    assert result.facts["hypoxia"] is None  # no SpO2: the oxygen record alone cannot tell
    assert judged(runtime, result, order("dexamethasone", "3264", dose=6)) == []


def test_covid_hypoxic_tocilizumab_order_gets_no_warning(runtime: Runtime) -> None:
    result = assessed(runtime, COVID_O2, crp=150, ferritin=6000, mhla_dr=2500)
    assert judged(runtime, result, order("tocilizumab", "612865")) == []


def _aged(where: ChartContext, years: int | None) -> ChartContext:
    return dataclasses.replace(
        where, age_years=years, age_days=None if years is None else 365 * years
    )


@pytest.mark.parametrize("years", [1, 6, 17])
def test_a_child_with_covid_gets_the_adult_rules_said_not_drafted(
    runtime: Runtime, years: int
) -> None:
    """Dexamethasone 6 mg (a fixed adult dose), tocilizumab and baricitinib: rules written for
    adults are said, hedged, with the child's age, and never drafted."""
    result = assessed(runtime, _aged(COVID_O2, years), crp=150)
    assert advice(result) == [
        ("dexamethasone", "outside-ages"), ("tocilizumab", "outside-ages"),
        ("baricitinib", "outside-ages"),
    ]  # fmt: skip
    assert not any(item.drafted for item in result.advice)
    first = result.advice[0].findings[0]
    assert f"the patient is {years} year" in first and "adults" in first
    assert first.endswith("no order drafted")


def test_covid_rules_draft_for_adults_and_unknown_ages(runtime: Runtime) -> None:
    """From 18 the drafts are as before; with no birth date too, and then the advice says the
    age could not be checked instead of treating the patient as an adult."""
    adult = assessed(runtime, _aged(COVID_O2, 18), crp=150)
    assert advice(adult)[:2] == [("dexamethasone", "suggest"), ("tocilizumab", "suggest")]
    assert all(item.age_unchecked is None for item in adult.advice)
    unknown = assessed(runtime, _aged(COVID_O2, None), crp=150)
    assert advice(unknown)[:2] == [("dexamethasone", "suggest"), ("tocilizumab", "suggest")]
    assert unknown.advice[0].age_unchecked is not None
    assert "age is not recorded" in unknown.advice[0].age_unchecked


def test_a_birth_year_alone_that_may_be_17_is_not_taken_as_18(runtime: Runtime) -> None:
    """Born in 2008, on 2026-11-30: 17 or 18. The age is the youngest it can be, said as such,
    and the adult rules are not drafted on a guess."""
    where = dataclasses.replace(_aged(COVID_O2, 17), age_at_least=True)
    result = assessed(runtime, where, crp=150)
    assert not any(item.drafted for item in result.advice)
    assert "the patient is at least 17 years old" in result.advice[0].findings[0]


def test_an_unreadable_birth_date_is_said_as_such(runtime: Runtime) -> None:
    """A birth date was sent but is no date: the drafts are those of an unknown age, and the
    card does not say that no age was recorded."""
    where = dataclasses.replace(_aged(COVID_O2, None), birth_date_unread=True)
    result = assessed(runtime, where, crp=150)
    assert advice(result)[:2] == [("dexamethasone", "suggest"), ("tocilizumab", "suggest")]
    unchecked = result.advice[0].age_unchecked
    assert unchecked is not None and unchecked.startswith(
        "The patient's birth date could not be used, so the age is unknown"
    )
    assert "not recorded" not in unchecked


@pytest.mark.parametrize(("years", "status"), [(1, "outside-ages"), (2, "suggest"), (6, "suggest")])
def test_crs_tocilizumab_follows_the_labels_two_years(
    runtime: Runtime, years: int, status: str
) -> None:
    """Tocilizumab is labelled for CAR-T CRS from 2 years: a child of 2 or more with grade 2 is
    offered it; younger, the card asks for the cell therapy team instead of drafting."""
    result = assessed(runtime, _aged(CART_DAY3, years), (score("astct", 2),), **STORM)
    assert advice(result) == [("tocilizumab", status)]


def test_a_child_still_gets_dexamethasone_for_grade_3_crs(runtime: Runtime) -> None:
    """The CRS corticosteroid rule (ASCO 2021) names no age limit: a child is offered it."""
    result = assessed(runtime, _aged(CART_DAY3, 6), (score("astct", 3),), **STORM)
    assert advice(result) == [("tocilizumab", "suggest"), ("dexamethasone", "suggest")]


def adult_score(score_id: str, value: float) -> ScoreView:
    """A score the scores file limits to adults, as HScore (18 years)."""
    return score(score_id, value).model_copy(
        update={
            "label": "HScore",
            "population": "adults with suspected reactive haemophagocytic syndrome",
            "min_years": 18,
            "outside": "the HLH-2004 criteria apply",
        }
    )


def aged(where: ChartContext, years: int | None) -> ChartContext:
    return dataclasses.replace(
        where, age_years=years, age_days=None if years is None else years * 365
    )


def test_a_childs_hscore_decides_no_state_and_the_card_says_why(runtime: Runtime) -> None:
    """HScore >= 169 in a 6-year-old: not applied (derived in adults), so no HLH-94 advice."""
    where = aged(chart(finding("hlh")), 6)
    result = assessed(
        runtime,
        where,
        (score("hlh2004", 3, ("splenomegaly", "marrow")), adult_score("hscore", 212)),
    )
    assert result.state is None and result.advice == ()
    (line,) = result.not_applied
    assert "not applied: the patient is 6 years old" in line
    assert "adults with suspected reactive haemophagocytic syndrome" in line
    assert line.endswith("the HLH-2004 criteria apply")
    # HLH-2004 is still judged (here undecided), and says so apart.
    assert any("HLH-2004" in u for u in result.undecided)


def test_a_child_meeting_hlh2004_gets_the_hlh2004_state(runtime: Runtime) -> None:
    where = aged(chart(finding("hlh")), 6)
    result = assessed(runtime, where, (score("hlh2004", 5), adult_score("hscore", 212)))
    assert result.state is not None and result.state.id == "hlh2004"
    assert advice(result) == [("hlh-94", "advise")]


def test_a_childs_low_hscore_is_not_reported_as_not_applied(runtime: Runtime) -> None:
    where = aged(chart(finding("hlh")), 6)
    result = assessed(runtime, where, (score("hlh2004", 1), adult_score("hscore", 90)))
    assert result.state is None and result.not_applied == ()


@pytest.mark.parametrize("years", [18, 45, None])
def test_an_adults_or_unknown_age_hscore_applies_as_before(
    runtime: Runtime, years: int | None
) -> None:
    where = aged(chart(finding("hlh")), years)
    result = assessed(
        runtime,
        where,
        (score("hlh2004", 3, ("splenomegaly", "marrow")), adult_score("hscore", 212)),
    )
    assert result.state is not None and result.state.id == "hscore"
    assert advice(result) == [("hlh-94-hscore", "advise")]
    assert result.not_applied == ()
    unchecked = [n for n in result.notes if "age is not recorded" in n]
    assert bool(unchecked) == (years is None)


def test_a_childs_chis_asks_for_the_panel_and_says_it_was_derived_in_adults(
    runtime: Runtime,
) -> None:
    """cHIS is the diagnostic bar at every age (a diagnostic step), but in a child the card
    says the criteria were derived in adults, not just that the data meet them."""
    chis = score("chis", 5).model_copy(
        update={
            "label": "cHIS",
            "population": "adults hospitalised with COVID-19",
            "min_years": 18,
            "outside": "no paediatric cut-off is validated",
        }
    )
    child = assessed(runtime, aged(EMPTY_CHART, 8), (chis,), ferritin=1500, crp=160)
    assert child.diagnostic_bar is True
    (note,) = [n for n in child.notes if "derived in" in n]
    assert note.startswith("cHIS was derived in adults hospitalised with COVID-19")
    assert "the patient is 8 years old" in note and "never for a drug" in note
    assert "to ask for a cytokine panel" in note
    # A setting that never asks for the panel (sepsis) does not use the bar: nothing to say.
    septic = assessed(runtime, aged(chart(finding("sepsis")), 8), (chis,), ferritin=1500, crp=160)
    assert septic.state is None and septic.diagnostic_bar is True
    assert not any("derived in" in n for n in septic.notes)
    adult = assessed(runtime, aged(EMPTY_CHART, 40), (chis,), ferritin=1500, crp=160)
    assert adult.diagnostic_bar is True
    assert not any("derived in" in n for n in adult.notes)


def test_a_car_t_patient_is_never_handed_over_to_the_sepsis_rules(runtime: Runtime) -> None:
    """CAR-T day 6 with sepsis recorded and no CRS: the CAR-T rules keep the patient (a sepsis
    rule must not judge tocilizumab after CAR-T); only COVID-19 may take over."""
    where = chart(finding("iec", kind="car-t", day=6), finding("sepsis"))
    result = assessed(runtime, where, (score("astct", 0),), ferritin=6200)
    assert result.setting is not None and result.setting.setting == "iec"
    assert result.handed_over_from is None
