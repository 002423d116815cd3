"""read_chart: settings, drugs, oxygen, allergies and infections from FHIR resources."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from cds_service.context import ChartContext, ContextCatalog, load_context_catalog, read_chart
from cds_service.context.models import SettingFinding

from .builders import (
    CPT,
    ICD10CM,
    LOINC,
    NOW,
    PCS,
    RXNORM,
    RXNORM_OID,
    SNOMED,
    allergy,
    condition,
    med,
    observation,
    procedure,
    rx,
    text,
)


@pytest.fixture(scope="module")
def catalog() -> ContextCatalog:
    return load_context_catalog()


def chart(catalog: ContextCatalog, *resources: Any) -> ChartContext:
    return read_chart(list(resources), catalog, NOW)


def test_active_confirmed_covid_condition_is_the_covid_setting(catalog: ContextCatalog) -> None:
    found = chart(catalog, condition(ICD10CM, "U07.1")).settings
    assert [f.setting for f in found] == ["covid19"]
    assert found[0].reason == "Condition COVID-19 (U07.1), onset 2026-11-28"
    assert found[0].reference is not None and found[0].reference.startswith("Condition/")
    # An active infection for the other settings' label checks (the COVID-19 setting's own
    # checks leave it out: tests/rules)
    (infection,) = chart(catalog, condition(SNOMED, "840539006")).active_infections
    assert isinstance(infection, SettingFinding) and infection.setting == "covid19"


@pytest.mark.parametrize(
    "changes",
    [
        {"verification": "refuted"},
        {"verification": "entered-in-error"},
        {"clinical": "resolved"},
        {"clinical": "inactive"},
        {"abatementDateTime": "2026-11-29"},
        {"onset": "2026-12-05"},
    ],
)
def test_refuted_resolved_abated_or_future_conditions_define_no_setting(
    catalog: ContextCatalog, changes: dict[str, Any]
) -> None:
    context = chart(catalog, condition(ICD10CM, "A41.9", **changes))
    assert context.settings == () and context.active_infections == ()


def test_suspected_sepsis_is_no_setting_but_counts_as_an_infection(
    catalog: ContextCatalog,
) -> None:
    context = chart(catalog, condition(SNOMED, "91302008", verification="provisional"))
    assert not context.has("sepsis")
    assert [f.setting for f in context.suspected] == ["sepsis"]
    assert len(context.active_infections) == 1
    assert "suspected Sepsis" in str(context.active_infections[0])


def test_sepsis_needs_a_documented_infection_not_procalcitonin_alone(
    catalog: ContextCatalog,
) -> None:
    pct = observation("33959-8", valueQuantity={"value": 25, "unit": "ng/mL"})
    assert not chart(catalog, pct).has("sepsis")
    context = chart(catalog, pct, condition(ICD10CM, "R65.21"))
    assert context.has("sepsis") and len(context.active_infections) == 1


def test_car_t_infusion_procedure_gives_product_and_day(catalog: ContextCatalog) -> None:
    (finding,) = chart(catalog, procedure(PCS, "XW033H7", "2026-11-27T15:00:00Z")).settings
    assert (finding.setting, finding.kind, finding.product, finding.day) == (
        "iec",
        "car-t",
        "axicabtagene ciloleucel",
        3,
    )
    assert "day 3" in finding.reason
    cpt = chart(catalog, procedure(CPT, "38228", "2026-11-30")).settings
    assert cpt[0].day == 0 and cpt[0].product is None


def test_infusion_day_is_counted_in_the_infusions_own_time_zone(catalog: ContextCatalog) -> None:
    # 23:30 on the 27th in New York is the 28th in UTC: the patient is on day 3, not day 2.
    late = procedure(PCS, "XW033J7", "2026-11-27T23:30:00-05:00")
    assert chart(catalog, late).settings[0].day == 3
    # And today is counted in that zone too: at 03:00 UTC on the 21st it is still the 20th in
    # New York (day 3 after the 17th), and already the 21st in Kiribati.
    at = datetime(2026, 11, 21, 3, tzinfo=UTC)
    evening = procedure(PCS, "XW033J7", "2026-11-17T20:00:00-05:00")
    assert read_chart([evening], catalog, at).settings[0].day == 3
    morning = procedure(PCS, "XW033J7", "2026-11-18T10:00:00+14:00")
    assert read_chart([morning], catalog, at).settings[0].day == 3


def test_car_t_outside_the_window_or_undated_is_no_setting(catalog: ContextCatalog) -> None:
    old = (NOW - timedelta(days=29)).date().isoformat()
    edge = (NOW - timedelta(days=28)).date().isoformat()
    assert chart(catalog, procedure(PCS, "XW033H7", old)).settings == ()
    assert chart(catalog, procedure(PCS, "XW033H7", edge)).settings[0].day == 28
    undated = chart(catalog, procedure(PCS, "XW033H7", None))
    assert undated.settings == ()
    assert undated.problems[0].code == "no-effective-time"
    not_done = procedure(PCS, "XW033H7", "2026-11-29", status="not-done")
    assert chart(catalog, not_done).settings == ()


def test_car_t_and_bispecific_administrations_by_name_or_code(catalog: ContextCatalog) -> None:
    kymriah = med("MedicationAdministration", text("KYMRIAH suspension for IV infusion"))
    (finding,) = chart(catalog, kymriah).settings
    assert (finding.kind, finding.product, finding.day) == ("car-t", "tisagenlecleucel", 0)
    tec = med("MedicationAdministration", rx("2619438", RXNORM_OID), "2026-11-26T09:00:00Z")
    (finding,) = chart(catalog, tec).settings
    assert (finding.kind, finding.product, finding.day) == ("bispecific", "teclistamab", 4)
    # an order for a CAR-T product is not an infusion
    assert chart(catalog, med("MedicationRequest", text("Yescarta"))).settings == ()


def test_a_crs_or_icans_code_alone_is_no_immune_effector_cell_setting(
    catalog: ContextCatalog,
) -> None:
    """The setting is recognised from an infusion or a bispecific dose; a CRS/ICANS code only
    supports it (a CRS code also follows COVID-19, sepsis or other drugs)."""
    crs = condition(ICD10CM, "D89.832")
    icans = condition(ICD10CM, "G92.01")
    assert chart(catalog, crs).settings == ()
    assert chart(catalog, icans).settings == ()
    infused = chart(catalog, procedure(PCS, "XW033H7", "2026-11-27T15:00:00Z"), crs)
    assert [(f.setting, f.kind) for f in infused.settings] == [("iec", "car-t"), ("iec", None)]
    old = (NOW - timedelta(days=40)).date().isoformat()  # outside the window: no setting
    assert chart(catalog, procedure(PCS, "XW033H7", old), crs).settings == ()


def test_age_is_read_from_the_patients_birth_date(catalog: ContextCatalog) -> None:
    def patient(birth: object) -> dict[str, Any]:
        return {"resourceType": "Patient", "id": "p", "birthDate": birth}

    assert chart(catalog, patient("2023-05-01")).age_years == 3
    assert chart(catalog, patient(NOW.date().isoformat())).age_days == 0
    newborn = chart(catalog, patient((NOW - timedelta(days=20)).date().isoformat()))
    assert (newborn.age_years, newborn.age_days) == (0, 20)
    assert chart(catalog, patient("1968-05-01T10:00:00Z")).age_years == 58
    assert chart(catalog).age_years is None
    assert chart(catalog).no_age() == "the patient's age is not recorded"


def test_a_year_or_month_alone_gives_the_youngest_age_it_can_mean(
    catalog: ContextCatalog,
) -> None:
    """On 2026-11-30, "2008" is 17 or 18: a minimum age of 18 must not be taken as met."""

    def age(birth: str) -> tuple[int | None, bool, str | None]:
        found = chart(catalog, {"resourceType": "Patient", "id": "p", "birthDate": birth})
        assert found.problems == ()
        return found.age_years, found.age_at_least, found.age_text()

    assert age("2008") == (17, True, "at least 17 years old")
    assert age("2008-12") == (17, False, "17 years old")  # 18 from 2026-12-01 at the earliest
    assert age("2008-11") == (18, False, "18 years old")  # 18 whichever day of November
    assert age("2008-11-30") == (18, False, "18 years old")
    assert age("2008-12-01") == (17, False, "17 years old")
    assert age("2026") == (0, True, "at least 0 days old")  # born this year: up to today
    assert age("2026-12-01") == (0, False, "0 days old")  # tomorrow in UTC: today east of it
    born_2008 = chart(catalog, {"resourceType": "Patient", "id": "p", "birthDate": "2008"})
    assert born_2008.oldest_age == (18, (NOW.date() - date(2008, 1, 1)).days)


@pytest.mark.parametrize(
    ("birth", "code"),
    [
        ("30/11/1956", "malformed"),
        ("2010-02-29", "malformed"),
        ("", "malformed"),
        (19560101, "malformed"),
        ("2090-01-01", "future-dated"),
        ("2026-12-02", "future-dated"),  # two days ahead of the evaluation (2026-11-30)
    ],
)
def test_a_birth_date_that_cannot_be_read_is_a_data_problem_not_a_missing_age(
    catalog: ContextCatalog, birth: object, code: str
) -> None:
    found = chart(catalog, {"resourceType": "Patient", "id": "p", "birthDate": birth})
    assert found.age_years is None and found.birth_date_unread
    assert [(p.code, p.reference) for p in found.problems] == [(code, "Patient/p")]
    assert "birthDate" in found.problems[0].reason
    assert found.no_age(start=True) == (
        "The patient's birth date could not be used, so the age is unknown"
    )


def test_hlh_kinds(catalog: ContextCatalog) -> None:
    d761 = chart(catalog, condition(ICD10CM, "D76.1")).settings
    assert [(f.setting, f.kind) for f in d761] == [("hlh", None)]
    with_ebv = chart(catalog, condition(ICD10CM, "D76.1"), condition(ICD10CM, "B27.09"))
    assert [(f.setting, f.kind) for f in with_ebv.settings] == [("hlh", "infection")]
    assert "Epstein-Barr" in with_ebv.settings[0].reason
    assert len(with_ebv.active_infections) == 1
    familial = chart(catalog, condition("http://www.orpha.net", "ORPHA:540"))
    assert [(f.setting, f.kind) for f in familial.settings] == [("hlh", "primary")]
    d762 = chart(catalog, condition(ICD10CM, "D76.2")).settings
    assert d762[0].kind == "infection"


def test_stills_and_mas_codes(catalog: ContextCatalog) -> None:
    assert chart(catalog, condition(ICD10CM, "M08.22")).has("stills")
    assert chart(catalog, condition(ICD10CM, "M06.1")).has("stills")
    both = chart(catalog, condition(SNOMED, "1156801007"))
    assert both.has("stills") and both.has("hlh") and both.findings("hlh")[0].kind == "mas"
    assert not chart(catalog, condition(ICD10CM, "M08.1")).has("stills")


def test_drugs_by_rxnorm_url_oid_name_and_medication_resource(catalog: ContextCatalog) -> None:
    toci = med(
        "MedicationAdministration", rx("612865", RXNORM_OID), dose={"value": 0.8, "unit": "g"}
    )
    dexa = med(
        "MedicationRequest",
        rx("3264"),
        "2026-11-30T06:00:00Z",
        dose={"value": 6, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
    )
    medication = {
        "resourceType": "Medication",
        "id": "med1",
        "code": {"coding": [{"system": "urn:oid:1.2.840.114350", "code": "123"}], "text": "x"},
        "ingredient": [{"itemCodeableConcept": {"text": "Methylprednisolone sodium succinate"}}],
    }
    by_ref = med(
        "MedicationStatement",
        {"medicationReference": {"reference": "Medication/med1"}},
        dose={"value": 1, "unit": "{tbl}"},
    )
    by_display = med(
        "MedicationAdministration",
        {
            "medicationReference": {
                "reference": "Medication/gone",
                "display": "ANAKINRA 100 MG/0.67ML",
            }
        },
    )
    context = chart(catalog, toci, dexa, medication, by_ref, by_display)
    assert [(d.drug, d.source) for d in context.drugs] == [
        ("tocilizumab", "administration"),
        ("anakinra", "administration"),
        ("dexamethasone", "order"),
        ("methylprednisolone", "statement"),
    ]
    assert context.given("tocilizumab")[0].dose_mg == 800
    assert context.given("dexamethasone")[0].dose_mg == 6
    assert context.given("methylprednisolone")[0].dose_mg is None  # a tablet count is no dose
    steroids = context.given("corticosteroid", since=NOW - timedelta(hours=7))
    assert [d.drug for d in steroids] == ["methylprednisolone", "dexamethasone"]  # newest first
    assert len(context.given("corticosteroid", since=NOW - timedelta(hours=5))) == 1


def test_an_active_order_or_statement_is_on_the_drug_now_however_old(
    catalog: ContextCatalog,
) -> None:
    """The start of a running order or statement is not the last time the drug was taken: a
    prednisone course started a month ago is taken today."""
    month_ago = "2026-10-31T08:00:00Z"
    running = {
        "order": med("MedicationRequest", rx("3264"), month_ago),
        "statement": med(
            "MedicationStatement", rx("8640"), None, effectivePeriod={"start": month_ago}
        ),
        "infusion": med("MedicationAdministration", rx("612865"), month_ago, "in-progress"),
    }
    for name, resource in running.items():
        (exposure,) = chart(catalog, resource).drugs
        assert exposure.ongoing, name
        assert exposure.until == NOW and exposure.when == datetime(2026, 10, 31, 8, tzinfo=UTC)
        assert exposure.taken_since(NOW - timedelta(days=7)), name
    week_ago = NOW - timedelta(days=7)
    prn = med("MedicationRequest", rx("3264"), month_ago)
    prn["dosageInstruction"] = [{"asNeededBoolean": True, "text": "4 mg q8h PRN nausea"}]
    course = med("MedicationRequest", rx("3264"), month_ago)
    course["dosageInstruction"] = [
        {"timing": {"repeat": {"boundsDuration": {"value": 10, "code": "d"}}}}
    ]
    valid = med("MedicationRequest", rx("3264"), month_ago)
    valid["dispenseRequest"] = {"validityPeriod": {"end": "2026-11-29T00:00:00Z"}}
    # A 10-day course on a prescription valid for a year: the course's end decides.
    bounded = med("MedicationRequest", rx("3264"), month_ago)
    bounded["dosageInstruction"] = [
        {"timing": {"repeat": {"boundsPeriod": {"end": "2026-11-10T08:00:00Z"}}}}
    ]
    bounded["dispenseRequest"] = {"validityPeriod": {"end": "2027-10-31T00:00:00Z"}}
    # As needed, written yesterday: it says nothing of doses taken, so it is no exposure.
    recent_prn = med("MedicationRequest", rx("3264"), "2026-11-29T08:00:00Z")
    recent_prn["dosageInstruction"] = prn["dosageInstruction"]
    assert chart(catalog, prn).drugs == () and chart(catalog, recent_prn).drugs == ()
    # A statement of a drug taken as needed is as old as it says: no dose is known to be taken.
    prn_statement = med(
        "MedicationStatement", rx("3264"), None, effectivePeriod={"start": month_ago}
    )
    prn_statement["dosage"] = [{"asNeededBoolean": True}]
    (taken,) = chart(catalog, prn_statement).drugs
    assert not taken.ongoing and not taken.taken_since(NOW - timedelta(days=7))
    ended = {
        # A course of 10 days from 2026-10-31, left "active" by the EHR: over on 2026-11-10.
        "a course that ran out": (course, datetime(2026, 11, 10, 8, tzinfo=UTC), False),
        # Valid until yesterday: taken until then.
        "validity ended yesterday": (valid, datetime(2026, 11, 29, tzinfo=UTC), True),
        "course ended, prescription still valid": (
            bounded,
            datetime(2026, 11, 10, 8, tzinfo=UTC),
            False,
        ),
        # A course that ended 3 days ago was taken until then, not only when it began.
        "ended 3 days ago": (
            med(
                "MedicationStatement",
                rx("8640"),
                None,
                "completed",
                effectivePeriod={"start": month_ago, "end": "2026-11-27T12:00:00Z"},
            ),
            datetime(2026, 11, 27, 12, tzinfo=UTC),
            True,
        ),
        # "active" with an end in the past: over, whatever the status says.
        "active, ended 10 days ago": (
            med(
                "MedicationStatement",
                rx("8640"),
                None,
                effectivePeriod={"start": month_ago, "end": "2026-11-20T12:00:00Z"},
            ),
            datetime(2026, 11, 20, 12, tzinfo=UTC),
            False,
        ),
        # A dose given a month ago is a month old.
        "given": (med("MedicationAdministration", rx("3264"), month_ago), None, False),
    }
    for name, (resource, until, recent) in ended.items():
        (exposure,) = chart(catalog, resource).drugs
        assert not exposure.ongoing, name
        assert exposure.until == until, name
        assert exposure.taken_since(week_ago) is recent, name


def test_name_matching_takes_whole_words(catalog: ContextCatalog) -> None:
    context = chart(catalog, med("MedicationAdministration", text("methylprednisolone 125 mg")))
    assert [d.drug for d in context.drugs] == ["methylprednisolone"]
    nor = chart(catalog, med("MedicationAdministration", text("Norepinephrine 4 mg/250 mL")))
    assert [d.drug for d in nor.drugs] == ["norepinephrine"]


def test_contained_medication_and_inactive_orders(catalog: ContextCatalog) -> None:
    contained = med(
        "MedicationAdministration",
        {
            "medicationReference": {"reference": "#m"},
            "contained": [
                {
                    "resourceType": "Medication",
                    "id": "m",
                    "code": rx("5492")["medicationCodeableConcept"],
                }
            ],
        },
    )
    stopped = med("MedicationRequest", rx("612865"), status_="completed")
    not_given = med("MedicationAdministration", rx("612865"), status_="not-done")
    context = chart(catalog, contained, stopped, not_given)
    assert [d.drug for d in context.drugs] == ["hydrocortisone"]


def test_current_vasopressors(catalog: ContextCatalog) -> None:
    running = med(
        "MedicationAdministration",
        rx("7512"),
        None,
        status_="in-progress",
        effectivePeriod={"start": "2026-11-30T02:00:00Z"},
    )
    recent = med(
        "MedicationAdministration", text("vasopressin 20 units/100 mL"), "2026-11-30T09:00:00Z"
    )
    old = med("MedicationAdministration", text("phenylephrine"), "2026-11-29T20:00:00Z")
    context = chart(catalog, running, recent, old)
    assert [v.drug for v in context.vasopressors] == ["norepinephrine", "vasopressin"]
    assert len(context.given("vasopressor")) == 3


def test_allergies_to_drugs_and_classes(catalog: ContextCatalog) -> None:
    context = chart(
        catalog,
        allergy({"coding": [{"system": RXNORM, "code": "612865"}]}),
        allergy({"text": "Steroids"}),
        allergy(
            {"text": "Anakinra"},
            verificationStatus={"coding": [{"code": "refuted"}]},
        ),
    )
    assert context.allergies == ("tocilizumab", "corticosteroid")
    assert context.allergic_to("dexamethasone", "corticosteroid")
    assert not context.allergic_to("anakinra", "il1-blockade")


def test_oxygen_support_levels(catalog: ContextCatalog) -> None:
    device = observation(
        "107117-4",
        "2026-11-30T10:00:00Z",
        valueCodeableConcept={"coding": [{"system": SNOMED, "code": "336623009"}]},
    )
    low = observation("3151-8", "2026-11-30T10:05:00Z", valueQuantity={"value": 4, "unit": "L/min"})
    high = observation(
        "3151-8", "2026-11-30T10:05:00Z", valueQuantity={"value": 8, "unit": "L/min"}
    )
    assert chart(catalog, device, low).oxygen.level == "low-flow"  # type: ignore[union-attr]
    support = chart(catalog, device, high).oxygen
    assert support is not None and support.level == "high-flow" and support.flow_l_min == 8
    nrb = observation("107117-4", valueString="Non-rebreather mask 15 L")
    assert chart(catalog, nrb).oxygen.level == "non-rebreather"  # type: ignore[union-attr]
    cpap = observation("107117-4", valueCodeableConcept={"text": "BiPAP"})
    assert chart(catalog, cpap).oxygen.level == "positive-pressure"  # type: ignore[union-attr]
    assert chart(catalog).oxygen is None


def test_a_newest_device_the_catalog_does_not_know_is_said(catalog: ContextCatalog) -> None:
    low = observation("3151-8", "2026-11-30T10:05:00Z", valueQuantity={"value": 4, "unit": "L/min"})
    unknown = observation(
        "107117-4", "2026-11-30T11:00:00Z", valueCodeableConcept={"text": "Tracheostomy collar"}
    )
    support = chart(catalog, low, unknown).oxygen
    assert support is not None and support.level == "low-flow" and support.device_unread
    assert support.text() == (
        "low-flow oxygen, 4 L/min, charted 2026-11-30 10:05 UTC, "
        "a newer device record could not be read"
    )
    # A device read after the unknown one: nothing left unread.
    airvo = observation("107117-4", "2026-11-30T11:30:00Z", valueString="AIRVO 2, 40 L/min")
    later = chart(catalog, low, unknown, airvo).oxygen
    assert later is not None and later.level == "high-flow" and not later.device_unread


def test_oxygen_from_pulse_oximetry_components(catalog: ContextCatalog) -> None:
    spo2 = observation(
        "59408-5",
        valueQuantity={"value": 91, "unit": "%"},
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "3151-8"}]},
                "valueQuantity": {"value": 2, "unit": "L/min"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "3150-0"}]},
                "valueQuantity": {"value": 28, "unit": "%"},
            },
        ],
    )
    support = chart(catalog, spo2).oxygen
    assert support is not None
    assert (support.level, support.flow_l_min, support.fio2) == ("low-flow", 2, 0.28)
    room_air = observation("3150-0", valueQuantity={"value": 0.21})
    assert chart(catalog, room_air).oxygen.level == "room-air"  # type: ignore[union-attr]


def test_tuberculosis_and_latent_tb(catalog: ContextCatalog) -> None:
    context = chart(catalog, condition(SNOMED, "56717001"))
    assert len(context.active_infections) == 1 and context.latent_tb is None
    assert chart(catalog, condition(ICD10CM, "Z22.7")).latent_tb is True


def test_search_bundles_are_walked(catalog: ContextCatalog) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": condition(ICD10CM, "U07.1")}, {"search": {"mode": "outcome"}}],
    }
    assert chart(catalog, bundle).has("covid19")


@pytest.mark.parametrize(
    "bad",
    [
        "not an object",
        {"resourceType": "Condition", "code": "U07.1"},
        {"resourceType": "Condition", "code": {"coding": "U07.1"}},
        {"resourceType": "Condition", "code": {"coding": [{"system": ICD10CM, "code": 7}]}},
        {"resourceType": "Procedure", "code": [], "performedDateTime": 5},
        {
            "resourceType": "MedicationAdministration",
            "medicationCodeableConcept": "toci",
            "dosage": 3,
        },
        {
            "resourceType": "MedicationRequest",
            "medicationReference": {"reference": 5},
            "status": {},
        },
        {
            "resourceType": "MedicationStatement",
            "medicationCodeableConcept": {"coding": {"code": 1}},
        },
        {"resourceType": "AllergyIntolerance", "code": {"coding": [None]}, "reaction": "x"},
        {"resourceType": "Observation", "status": "final", "component": "x", "code": None},
        {"resourceType": "Bundle", "entry": "x"},
        {
            "resourceType": "Condition",
            "code": {"coding": [{"system": ICD10CM, "code": "U07.1"}]},
            "onsetDateTime": {},
        },
    ],
)
def test_bad_shapes_never_raise(catalog: ContextCatalog, bad: Any) -> None:
    context = chart(catalog, bad)
    assert context.drugs == ()


def test_a_condition_code_that_is_not_a_concept_is_a_data_problem(catalog: ContextCatalog) -> None:
    context = chart(catalog, {"resourceType": "Condition", "id": "x", "code": "U07.1"})
    assert [p.code for p in context.problems] == ["malformed"]
    assert context.problems[0].reference == "Condition/x"


def test_chart_entries_of_another_patient_are_left_out_by_the_decision() -> None:
    from cds_service.decision import for_patient

    mine = condition(ICD10CM, "U07.1", subject={"reference": "Patient/p1"})
    theirs = procedure(PCS, "XW033H7", "2026-11-29", subject={"reference": "Patient/p2"})
    allergy_theirs = allergy({"text": "Anakinra"}, patient={"reference": "Patient/p2"})
    kept, foreign = for_patient([mine, theirs, allergy_theirs], "p1")
    assert kept == [mine]
    assert [p.code for p in foreign] == ["other-patient", "other-patient"]


def test_an_orders_indication_is_read_from_reason_code_or_a_referenced_condition(
    catalog: ContextCatalog,
) -> None:
    from cds_service.context import order_indication

    covid = condition(ICD10CM, "U07.1")
    found = chart(catalog, covid)
    coded = {"reasonCode": [{"coding": [{"system": ICD10CM, "code": "U07.1"}]}]}
    assert order_indication(coded, catalog, found) == {"covid19"}
    url = f"https://ehr.invalid/fhir/Condition/{covid['id']}"
    referenced = {"reasonReference": [{"reference": url}]}
    assert order_indication(referenced, catalog, found) == {"covid19"}
    # Another stated indication: no setting; nothing stated, or a Condition not on the chart:
    # it cannot be told.
    antenatal = {"reasonCode": {"text": "antenatal corticosteroids"}}  # one object, not a list
    assert order_indication(antenatal, catalog, found) == frozenset()
    assert order_indication({}, catalog, found) is None
    unseen = {"reasonReference": [{"reference": "Condition/not-on-the-chart"}]}
    assert order_indication(unseen, catalog, found) is None


@pytest.mark.parametrize("dosage", [[{"dose": {"value": 40, "unit": "mg"}}], "40 mg", 40, True])
def test_a_dosage_of_the_wrong_shape_is_a_drug_given_with_its_dose_unread(
    catalog: ContextCatalog, dosage: Any
) -> None:
    given = med("MedicationAdministration", text("dexamethasone"), dosage=dosage)
    (drug,) = chart(catalog, given).drugs
    assert (drug.drug, drug.dose_mg) == ("dexamethasone", None)


def test_doses_per_kg_given_are_mg_with_the_current_weight_and_implausible_ones_unread(
    catalog: ContextCatalog,
) -> None:
    per_kg = med(
        "MedicationAdministration", text("dexamethasone"), dose={"value": 0.15, "unit": "mg/kg"}
    )
    huge = med(
        "MedicationAdministration", text("dexamethasone"), dose={"value": 1e50, "unit": "mg"}
    )
    weighed = read_chart([per_kg, huge], catalog, NOW, weight_kg=40)
    assert [(d.dose_mg, d.by_weight_kg) for d in weighed.drugs] == [(6.0, 40), (None, None)]
    assert chart(catalog, per_kg).drugs[0].dose_mg is None  # no weight: unread
