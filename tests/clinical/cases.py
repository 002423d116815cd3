"""A test set built from published cases, trial eligibility criteria and guideline statements.

Each case is a synthetic chart shaped after its source (the source is cited on the case), sent
through the real HTTP endpoints: the drug the source supports must be suggested (or named, when
a label check turns it into a caution), the drugs it does not support must never be drafted, and
a standard-of-care order must never get a mismatch warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests.clinical.fhir import ICD10CM, ORPHA, SNOMED, Chart, order

TOCILIZUMAB = ("tocilizumab", "612865")
DEXAMETHASONE = ("dexamethasone", "3264")
ANAKINRA = ("anakinra", "72435")
EMAPALUMAB = ("emapalumab", "2104604")
BARICITINIB = ("baricitinib", "2047232")
METHYLPREDNISOLONE = ("methylprednisolone", "6902")
SARILUMAB = ("sarilumab", "1923319")
HYDROCORTISONE = ("hydrocortisone", "5492")
ETOPOSIDE = ("etoposide", "4179")
TECLISTAMAB = ("teclistamab", "2619432")
PREDNISONE = ("prednisone", "8640")

# Diagnoses more than one chart records: (system, code, display).
SEPSIS = (ICD10CM, "A41.9", "Sepsis, unspecified organism")
COVID19 = (ICD10CM, "U07.1", "COVID-19")
FAMILIAL_HLH = (ORPHA, "540", "Familial hemophagocytic lymphohistiocytosis")
# The indication an order records (MedicationRequest.reasonCode).
FOR_COVID19 = {"coding": [{"system": ICD10CM, "code": "U07.1", "display": "COVID-19"}]}
ANTENATAL = {"text": "Antenatal corticosteroids: threatened preterm birth"}
PNEUMOCOCCAL_MENINGITIS = {
    "coding": [{"system": ICD10CM, "code": "G00.1", "display": "Pneumococcal meningitis"}]
}

# The sources the cases are built from.
LEE2019 = (
    "Lee DW et al. ASTCT consensus grading for CRS. Biol Blood Marrow Transplant 2019;25:625-638"
)
LE2018 = (
    "Le RQ et al. FDA approval summary: tocilizumab for CAR T cell-induced CRS. Oncologist "
    "2018;23:943-947"
)
ACTEMRA = (
    "ACTEMRA US prescribing information: CRS dosing (8 mg/kg, >= 8 h apart, <= 3 doses/24 h, "
    "4 total); COVID-19 limits"
)
ASCO2021 = "Santomasso BD et al. ASCO guideline, CAR-T toxicities. J Clin Oncol 2021;39:3978-3992"
NEELAPU2017 = (
    "Neelapu SS et al. Axicabtagene ciloleucel in refractory large B-cell lymphoma (ZUMA-1). "
    "N Engl J Med 2017;377:2531-2544"
)
HINES2023 = (
    "Hines MR et al. Immune effector cell-associated HLH-like syndrome. Transplant Cell Ther "
    "2023;29:438.e1"
)
MOREAU2022 = (
    "Moreau P et al. Teclistamab in relapsed or refractory multiple myeloma (MajesTEC-1). N "
    "Engl J Med 2022;387:495-505"
)
RECOVERY_TCZ = (
    "RECOVERY Collaborative Group. Tocilizumab in COVID-19. Lancet 2021;397:1637-1645 "
    "(eligibility: hypoxia and CRP >= 75 mg/L)"
)
RECOVERY_DEX = (
    "RECOVERY Collaborative Group. Dexamethasone in hospitalized patients with Covid-19. N "
    "Engl J Med 2021;384:693-704"
)
NIH_COVID = (
    "NIH COVID-19 Treatment Guidelines: dexamethasone plus tocilizumab or baricitinib for "
    "hospitalised adults on oxygen"
)
RECOVERY_HIGHER = (
    "RECOVERY Collaborative Group. Higher dose corticosteroids in patients admitted to hospital "
    "with COVID-19 who are hypoxic but not requiring ventilatory support. Lancet "
    "2023;401:1499-1507"
)
ONTARIO_BARI = (
    "Hempel AK et al. Baricitinib for hospitalized patients with COVID-19. Ontario COVID-19 "
    "Science Advisory Table 2022 (not combined with an IL-6 inhibitor)"
)
GIAMARELLOS2020 = (
    "Giamarellos-Bourboulis EJ et al. Complex immune dysregulation in COVID-19. Cell Host "
    "Microbe 2020;27:992-1000"
)
PROVIDE = (
    "Leventogiannis K et al. PROVIDE randomized clinical trial. Cell Rep Med 2022;3:100817 "
    "(MALS: ferritin > 4,420; immunoparalysis: HLA-DR < 5,000)"
)
LEISMAN2020 = (
    "Leisman DE et al. Cytokine elevation in severe COVID-19 vs sepsis. Lancet Respir Med "
    "2020;8:1233-1244"
)
SSC2021 = (
    "Evans L et al. Surviving Sepsis Campaign 2021. Crit Care Med 2021;49:e1063 "
    "(hydrocortisone 200 mg/day in septic shock)"
)
KINERET = "KINERET US prescribing information: do not initiate in patients with active infections"
RAVELLI2016 = (
    "Ravelli A et al. 2016 classification criteria for MAS complicating sJIA. Ann Rheum Dis "
    "2016;75:481-489"
)
EULAR2024 = (
    "Fautrel B et al. EULAR/PReS recommendations for Still's disease. Ann Rheum Dis "
    "2024;83:1614-1627"
)
GAMIFANT = (
    "GAMIFANT US prescribing information: primary HLH refractory/recurrent/progressive; "
    "Still's MAS after glucocorticoids; latent TB testing"
)
FARDET2014 = (
    "Fardet L et al. Development and validation of the HScore. Arthritis Rheumatol "
    "2014;66:2613-2620 (adults with suspected reactive haemophagocytic syndrome)"
)
HENTER2007 = (
    "Henter JI et al. HLH-2004 diagnostic and therapeutic guidelines. Pediatr Blood Cancer "
    "2007;48:124-131"
)
LOCATELLI2020 = (
    "Locatelli F et al. Emapalumab in primary HLH. N Engl J Med 2020;382:1811-1822 "
    "(refractory or recurrent disease)"
)
WEBB2020 = "Webb BJ et al. cHIS criteria. Lancet Rheumatol 2020;2:e754-e763"
PALS2010 = (
    "Kleinman ME et al. Part 14: Pediatric Advanced Life Support, 2010 AHA Guidelines. "
    "Circulation 2010;122:S876-S908 (hypotension: systolic < 70 + 2 x age in years at 1-10 years)"
)
ACTEMRA_CRS_AGE = "ACTEMRA US prescribing information: CAR-T CRS in patients 2 years and older"
COVID_ADULT_LABELS = (
    "ACTEMRA and OLUMIANT US prescribing information: COVID-19 in hospitalised adults; RECOVERY "
    "tocilizumab enrolled adults"
)
SETTINGS_REF = "clinical-settings.md section 1: an isolated cytokine value is no cytokine storm"


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    chart: Callable[[], Chart]
    hook: str = "patient-view"
    orders: dict[str, Any] | None = None
    suggest: tuple[str, ...] = ()  # drugs drafted (MedicationRequest suggestions)
    named: tuple[str, ...] = ()  # drugs named on a card but not drafted (a caution)
    never: tuple[str, ...] = ()  # drugs never drafted
    mismatch: bool | None = None  # True: an ordermismatch card; False: none
    panel: bool | None = None  # True: the multiplex panel is suggested; False: it is not
    no_cards: bool = False
    text: tuple[str, ...] = ()  # phrases the cards must carry (case-insensitive)
    absent: tuple[str, ...] = ()  # phrases no card may carry (case-insensitive)
    also: dict[str, Any] = field(default_factory=dict)


# --- charts ------------------------------------------------------------------------------------


def car_t_day3_grade2(patient: str = "case-cart-day3") -> Chart:
    """ZUMA-1-like: axi-cel on day 0, fever and hypoxia on low-flow oxygen on day 3."""
    return (
        Chart(patient)
        .car_t_infusion(days_ago=3)
        .vitals(temperature=39.2, spo2=91, oxygen_flow=2, systolic=96)
        .labs(il6=2000, ifng=500, ferritin=6000, crp=180, neutrophils=0.3, platelets=45)
    )


def car_t_grade1() -> Chart:
    return (
        Chart("case-cart-grade1")
        .car_t_infusion(days_ago=2)
        .vitals(temperature=38.4, spo2=97, oxygen_flow=0, systolic=118)
        .labs(il6=300, ferritin=900, crp=60)
    )


def car_t_grade1_fever_4_days() -> Chart:
    """Day 5, grade 1: febrile since day 1 (spikes with afebrile readings between them)."""
    chart = Chart("case-cart-grade1-4days").car_t_infusion(days_ago=5)
    spikes = ((98, 38.3), (80, 37.4), (75, 38.8), (52, 38.5), (30, 38.9), (12, 38.2))
    for hours_ago, celsius in spikes:
        chart = chart.lab("temperature", celsius, hours_ago)
    return chart.vitals(temperature=38.4, spo2=97, oxygen_flow=0, systolic=118).labs(
        il6=300, ferritin=900, crp=60
    )


def iec_hs_hypoxic_late_after_tocilizumab() -> Chart:
    """Day 16, tocilizumab on day 3 for CRS: afebrile now, on low-flow oxygen, with HLH-like
    labs. The old dose no longer waives fever: this is no CRS grade 2."""
    return (
        Chart("case-iechs-late-hypoxia")
        .car_t_infusion(days_ago=16)
        .given(*TOCILIZUMAB, hours_ago=13 * 24, dose_mg=640)
        .vitals(temperature=37.2, spo2=93, oxygen_flow=2, systolic=112)
        .lab("ferritin", 4000, 48)
        .labs(ferritin=15000, platelets=30, neutrophils=0.4, fibrinogen=110, alt=260)
    )


def _covid_day10_after_car_t(patient: str, **vitals: float) -> Chart:
    """Day 10 after CAR-T with COVID-19 and no CRS or HLH-like labs; the vitals vary."""
    return (
        Chart(patient)
        .car_t_infusion(days_ago=10)
        .condition(*COVID19, 2)
        .vitals(**vitals)
        .labs(crp=150, ferritin=600, fibrinogen=4.1, alt=30, platelets=160, neutrophils=3.2)
    )


def covid_hypoxic_day10_after_car_t() -> Chart:
    """Afebrile (no CRS grade); COVID-19 needing oxygen."""
    return _covid_day10_after_car_t(
        "case-cart-day10-covid", temperature=37.3, spo2=89, oxygen_flow=4, systolic=118
    )


def covid_hypoxic_after_car_t_no_temperature() -> Chart:
    """As above with no temperature charted: the CRS grade cannot be judged, so the CAR-T rules
    keep the patient (a grade 2 cannot be excluded) and say what is missing."""
    return _covid_day10_after_car_t(
        "case-cart-day10-covid-notemp", spo2=89, oxygen_flow=4, systolic=118
    )


def covid_after_car_t_oxygen_unknown() -> Chart:
    """Afebrile (no CRS grade), with no saturation or oxygen record: the COVID-19 rules cannot
    tell whether it needs oxygen."""
    return _covid_day10_after_car_t("case-cart-day10-covid-nospo2", temperature=37.3, systolic=118)


def covid_hypoxic_late_after_tocilizumab() -> Chart:
    """Day 10 after CAR-T, tocilizumab 9 days ago: afebrile, COVID-19 needing oxygen. The old
    dose no longer waives fever, so the COVID-19 rules apply, and the card keeps the caveat
    that the hypoxia may still be CRS the drug masks."""
    return _covid_day10_after_car_t(
        "case-cart-covid-late-tocilizumab", temperature=37.3, spo2=89, oxygen_flow=4, systolic=118
    ).given(*TOCILIZUMAB, hours_ago=9 * 24, dose_mg=640)


def car_t_hypoxic_on_room_air() -> Chart:
    """Day 3, febrile, SpO2 88 % with room air recorded: it may need oxygen not charted yet."""
    return (
        Chart("case-cart-hypoxic-air")
        .car_t_infusion(days_ago=3)
        .vitals(temperature=38.9, spo2=88, oxygen_flow=0, systolic=112)
        .labs(il6=900, ferritin=2000, crp=120)
    )


def car_t_no_temperature() -> Chart:
    return (
        Chart("case-cart-notemp")
        .car_t_infusion(days_ago=3)
        .vitals(spo2=91, oxygen_flow=2)
        .labs(il6=1500, ferritin=3000, crp=150)
    )


def car_t_grade3(patient: str = "case-cart-grade3") -> Chart:
    return (
        Chart(patient)
        .car_t_infusion(days_ago=4)
        .vitals(temperature=39.6, spo2=89, oxygen_flow=12)
        .labs(il6=4000, ifng=900, ferritin=9000, crp=220)
    )


def car_t_grade3_home_prednisone() -> Chart:
    """Grade 3 CRS in a patient taking prednisone 5 mg a day: no CRS dose of corticosteroid."""
    return car_t_grade3("case-cart-grade3-prednisone").taking(*PREDNISONE, 72, daily_mg=5)


def car_t_grade3_with_antiemetic_dexamethasone() -> Chart:
    """Grade 3 CRS with an as-needed dexamethasone order for nausea, written on admission two
    days ago: an as-needed order is no CRS treatment taken."""
    return car_t_grade3("case-cart-grade3-prn").ordered(
        *DEXAMETHASONE, 48, as_needed="4 mg every 8 hours as needed for nausea"
    )


def car_t_after_two_doses() -> Chart:
    """Grade 2 CRS persisting 10 h after the second tocilizumab dose; IL-6 rose after it."""
    return (
        Chart("case-cart-redose")
        .car_t_infusion(days_ago=3)
        .given(*TOCILIZUMAB, hours_ago=22, dose_mg=640)
        .given(*TOCILIZUMAB, hours_ago=10, dose_mg=640)
        .vitals(temperature=38.9, spo2=91, oxygen_flow=3)
        .lab("il6", 900, 26)
        .lab("il6", 6000, 2)
        .labs(ferritin=5000, crp=160)
    )


def car_t_three_doses_24h() -> Chart:
    return (
        Chart("case-cart-maxdose")
        .car_t_infusion(days_ago=3)
        .given(*TOCILIZUMAB, hours_ago=23, dose_mg=640)
        .given(*TOCILIZUMAB, hours_ago=14, dose_mg=640)
        .given(*TOCILIZUMAB, hours_ago=5, dose_mg=640)
        .lab("temperature", 38.8, 1)
        .oxygen_flow(4, 1)
        .lab("spo2", 92, 1)
        .labs(il6=5000, ferritin=7000, crp=170)
    )


def car_t_with_sepsis() -> Chart:
    """CAR-T CRS with a recorded bacterial infection (sepsis code) beside it."""
    return car_t_day3_grade2("case-cart-sepsis").condition(*SEPSIS, 1).labs(pct=4)


def car_t_with_covid() -> Chart:
    """CAR-T CRS with COVID-19 recorded beside it: an active infection for tocilizumab's label."""
    return car_t_day3_grade2("case-cart-covid").condition(*COVID19, 2)


def car_t_allergic() -> Chart:
    return car_t_day3_grade2("case-cart-allergy").allergy(*TOCILIZUMAB)


def iec_hs() -> Chart:
    """Day 14: CRS resolved (afebrile), rising ferritin, cytopenias, low fibrinogen."""
    return (
        Chart("case-iechs")
        .car_t_infusion(days_ago=14)
        .vitals(temperature=37.1, spo2=97, oxygen_flow=0)
        .lab("ferritin", 4000, 48)
        .labs(ferritin=15000, platelets=30, neutrophils=0.4, fibrinogen=110, alt=260, ifng=400)
    )


def iec_hs_febrile() -> Chart:
    """Day 14, still febrile (ASTCT grade 1): rising ferritin, low fibrinogen, transaminitis."""
    return (
        Chart("case-iechs-febrile")
        .car_t_infusion(days_ago=14)
        .vitals(temperature=38.6, spo2=97, oxygen_flow=0, systolic=110)
        .lab("ferritin", 4000, 48)
        .labs(ferritin=15000, platelets=30, neutrophils=0.4, fibrinogen=110, alt=260, ifng=400)
    )


def car_t_day1_well() -> Chart:
    """Day 1, well: afebrile on room air; ferritin 900 and the neutropenia lymphodepletion
    leaves are no HLH-like syndrome."""
    return (
        Chart("case-cart-day1-well")
        .car_t_infusion(days_ago=1)
        .vitals(temperature=36.9, spo2=98, oxygen_flow=0, systolic=122)
        .labs(ferritin=900, neutrophils=0.1)
    )


def covid_with_crs_code() -> Chart:
    """Hypoxic COVID-19 with a CRS diagnosis code and no CAR-T or bispecific on the chart."""
    return (
        covid_hypoxic("case-covid-crs-code", crp=50, neutrophils=0.5)
        .lab("temperature", 38.5, 1)
        .condition(ICD10CM, "D89.839", "Cytokine release syndrome, grade unspecified", 1)
    )


def car_t_crs_coded_after_tocilizumab() -> Chart:
    """Day 3: tocilizumab 10 h ago, the CRS diagnosis charted after it; afebrile on 4 L/min."""
    return (
        Chart("case-cart-coded-after-tcz")
        .car_t_infusion(days_ago=3)
        .given(*TOCILIZUMAB, hours_ago=10, dose_mg=640)
        .condition(ICD10CM, "D89.832", "Cytokine release syndrome, grade 2", 4 / 24)
        .vitals(temperature=37.4, spo2=93, oxygen_flow=4, systolic=105)
        .labs(ferritin=1500, neutrophils=0.2, platelets=60, crp=80)
    )


def bispecific_new_episode() -> Chart:
    """Teclistamab: an earlier CRS 20 days ago took 4 tocilizumab doses; grade 2 again now,
    30 h after the latest dose."""
    chart = (
        Chart("case-bispecific-new-episode")
        .given(*TECLISTAMAB, hours_ago=24 * 21, dose_mg=6)
        .given(*TECLISTAMAB, hours_ago=30, dose_mg=90)
    )
    for hours in (24 * 20, 24 * 20 - 9, 24 * 19, 24 * 19 - 9):
        chart.given(*TOCILIZUMAB, hours_ago=hours, dose_mg=640)
    return chart.vitals(temperature=38.7, spo2=90, oxygen_flow=2).labs(
        il6=600, crp=120, ferritin=1500
    )


def car_t_grade_incomplete() -> Chart:
    """Day 3: 39 °C and SpO2 86 %, but neither blood pressure nor oxygen support charted."""
    return (
        Chart("case-cart-incomplete")
        .car_t_infusion(days_ago=3)
        .vitals(temperature=39.0, spo2=86)
        .labs(il6=2000, ferritin=6000, crp=180)
    )


def bispecific_grade2() -> Chart:
    return (
        Chart("case-bispecific")
        .given(*TECLISTAMAB, hours_ago=40, dose_mg=0)
        .vitals(temperature=38.7, spo2=90, oxygen_flow=2)
        .labs(il6=600, crp=120, ferritin=1500)
    )


def car_t_child(patient: str, age: int, systolic: float) -> Chart:
    """A child on day 2 after tisagenlecleucel: 38.6 °C on room air."""
    return (
        Chart(patient)
        .aged(age)
        .car_t_infusion(
            days_ago=2, code="XW033J7", product="Kymriah", ingredient="tisagenlecleucel"
        )
        .vitals(temperature=38.6, spo2=97, oxygen_flow=0, systolic=systolic)
        .labs(il6=400, ferritin=1200, crp=90)
    )


def car_t_child_normal_bp() -> Chart:
    """A 3-year-old's systolic 86 mmHg is normal for age (PALS: hypotension below 76)."""
    return car_t_child("case-cart-child-3y", 3, 86)


def car_t_child_hypotensive() -> Chart:
    return car_t_child("case-cart-child-3y-hypotensive", 3, 70)


def car_t_infant_hypotensive() -> Chart:
    """A 1-year-old with systolic 65 mmHg (PALS: hypotension below 72): younger than the
    label's 2 years for tocilizumab in CRS."""
    return car_t_child("case-cart-infant-1y", 1, 65)


def car_t_adult_systolic_86() -> Chart:
    """The 3-year-old's vital signs in an adult: systolic 86 is hypotension by the adult
    convention (systolic < 90)."""
    return car_t_child("case-cart-adult-sbp86", 40, 86)


def car_t_age_unknown() -> Chart:
    return car_t_child("case-cart-age-unknown", 40, 86).age_unknown()


def car_t_weighing(kg: float, *, unit: str = "kg", days_ago: float = 0.5) -> Chart:
    """The ZUMA-1-like grade 2 CRS with a body weight charted `days_ago`."""
    patient = f"case-cart-{kg:g}{unit.strip('[]_av')}-{days_ago:g}d"
    return car_t_day3_grade2(patient).lab("body_weight", kg, 24 * days_ago, unit=unit)


def car_t_child_weighing(age: int, kg: float) -> Chart:
    """A child with grade 2 CRS: hypoxic on low-flow oxygen on day 2 after tisagenlecleucel."""
    return (
        car_t_child(f"case-cart-child-{age}y-{kg:g}kg", age, 95)
        .vitals(spo2=91, oxygen_flow=2)
        .lab("body_weight", kg, 12)
    )


def covid_hypoxic(
    patient: str = "case-covid-recovery", crp: float = 150, neutrophils: float = 6.1
) -> Chart:
    """RECOVERY eligibility: COVID-19, SpO2 < 92 % needing oxygen, CRP >= 75 mg/L."""
    return (
        Chart(patient)
        .condition(*COVID19, 6)
        .lab("temperature", 38.3, 2)
        .vitals(spo2=89, oxygen_flow=4)
        .labs(
            crp=crp, il6=60, ferritin=1200, neutrophils=neutrophils, platelets=210, lymphocytes=0.6
        )
    )


def covid_child() -> Chart:
    """RECOVERY-eligible labs and oxygen need, in a 6-year-old."""
    return covid_hypoxic("case-covid-child-6y").aged(6)


def covid_age_unknown() -> Chart:
    return covid_hypoxic("case-covid-age-unknown").age_unknown()


def covid_birth_date_unreadable() -> Chart:
    """The birth date sent day first ("30/11/1956"): no date FHIR knows, so no age."""
    chart = covid_hypoxic("case-covid-birth-unreadable")
    chart.birth_date = "30/11/1956"
    return chart


def covid_mals_low_hladr() -> Chart:
    return covid_hypoxic("case-covid-hladr").labs(ferritin=6000, mhla_dr=3000)


def covid_on_dexamethasone() -> Chart:
    return covid_hypoxic("case-covid-ondex", crp=120).given(*DEXAMETHASONE, hours_ago=20, dose_mg=6)


def covid_home_prednisone() -> Chart:
    """Hypoxic COVID-19 on home prednisone 5 mg a day: no COVID-19 dose of corticosteroid."""
    return covid_hypoxic("case-covid-home-prednisone").taking(*PREDNISONE, 72, daily_mg=5)


def covid_on_dexamethasone_ordered_8_days_ago() -> Chart:
    """An active dexamethasone order written 8 days ago: running now, however old the order."""
    return covid_hypoxic("case-covid-dex-order-8d", crp=120).ordered(*DEXAMETHASONE, 8 * 24)


def covid_on_prednisone_for_a_month() -> Chart:
    """Prednisone 60 mg a day, taken for 30 days and still taken: above dexamethasone 6 mg's
    equivalent."""
    return covid_hypoxic("case-covid-prednisone-30d").taking(*PREDNISONE, 30 * 24, daily_mg=60)


def sjia_mas_on_prednisone_for_10_days() -> Chart:
    """MAS still met on prednisone 60 mg a day, taken for 10 days and still taken."""
    return sjia_mas("case-sjia-prednisone-10d").taking(*PREDNISONE, 10 * 24, daily_mg=60)


def covid_on_methylprednisolone() -> Chart:
    """Methylprednisolone 16 mg twice in 24 h: 32 mg a day, dexamethasone 6 mg's equivalent."""
    return (
        covid_hypoxic("case-covid-on-mp")
        .given(*METHYLPREDNISOLONE, hours_ago=20, dose_mg=16)
        .given(*METHYLPREDNISOLONE, hours_ago=8, dose_mg=16)
    )


def covid_on_methylprednisolone_unread(*, one_read: bool) -> Chart:
    """Methylprednisolone given with no dose recorded (and, with `one_read`, 16 mg before it):
    whether the day's total reaches dexamethasone 6 mg's equivalent is unknown."""
    chart = covid_hypoxic(f"case-covid-mp-unread-{one_read}")
    if one_read:
        chart = chart.given(*METHYLPREDNISOLONE, hours_ago=20, dose_mg=16)
    return chart.given(*METHYLPREDNISOLONE, hours_ago=8)


def covid_on_methylprednisolone_per_kg(kg: float | None) -> Chart:
    """Methylprednisolone 1 mg/kg given 8 h ago; a body weight of `kg` charted, or none."""
    chart = covid_hypoxic(f"case-covid-mp-per-kg-{kg}").given(
        *METHYLPREDNISOLONE, hours_ago=8, dose_mg=1, unit="mg/kg"
    )
    return chart.lab("body_weight", kg, 30) if kg is not None else chart


def covid_on_cpap() -> Chart:
    """RECOVERY eligibility, on CPAP (ventilatory support) rather than simple oxygen."""
    return covid_hypoxic("case-covid-cpap").oxygen_device("CPAP")


def covid_support_unclear(device: str | None = None, fio2: float | None = None) -> Chart:
    """RECOVERY eligibility on 4 L/min, then a newer record that may be ventilatory support."""
    chart = covid_hypoxic("case-covid-support-unclear")
    if device is not None:
        chart = chart.oxygen_device(device, hours_ago=0.5)
    return chart.fio2(fio2, hours_ago=0.5) if fio2 is not None else chart


def covid_after_tocilizumab() -> Chart:
    return covid_on_dexamethasone().given(*TOCILIZUMAB, hours_ago=30, dose_mg=600)


def covid_after_sarilumab() -> Chart:
    """Sarilumab 30 hours ago, on dexamethasone: an IL-6 receptor blocker, as tocilizumab."""
    return covid_on_dexamethasone().given(*SARILUMAB, hours_ago=30, dose_mg=400)


def covid_after_baricitinib() -> Chart:
    return covid_on_dexamethasone().given(*BARICITINIB, hours_ago=20, dose_mg=4)


def covid_no_oxygen() -> Chart:
    return (
        Chart("case-covid-air")
        .condition(*COVID19, 3)
        .lab("temperature", 37.9, 2)
        .vitals(spo2=96, oxygen_flow=0)
        .labs(crp=40, il6=30, ferritin=700)
    )


def covid_low_crp() -> Chart:
    return covid_hypoxic("case-covid-lowcrp", crp=50)


def covid_with_pneumonia() -> Chart:
    return covid_hypoxic("case-covid-pneumonia").condition(
        ICD10CM, "J15.9", "Bacterial pneumonia", 1
    )


def covid_septic_shock(patient: str = "case-covid-septic-shock") -> Chart:
    """Hypoxic COVID-19 with septic shock coded as ICD-10-CM codes COVID-19's own (R65.21)."""
    return covid_hypoxic(patient).condition(ICD10CM, "R65.21", "Severe sepsis with septic shock", 1)


def covid_septic_shock_and_pneumonia() -> Chart:
    return covid_septic_shock("case-covid-shock-pneumonia").condition(
        ICD10CM, "J15.9", "Bacterial pneumonia", 1
    )


def covid_neutropenic() -> Chart:
    return covid_hypoxic("case-covid-anc", neutrophils=0.6)


def sepsis_il6(patient: str = "case-sepsis-il6") -> Chart:
    """Bacterial sepsis: IL-6 980 pg/mL, procalcitonin 25 ng/mL."""
    return (
        Chart(patient)
        .condition(*SEPSIS, 1)
        .lab("temperature", 39.0, 2)
        .labs(il6=980, pct=25, crp=250, ferritin=900)
    )


def sepsis_mals() -> Chart:
    return (
        Chart("case-sepsis-mals")
        .condition(SNOMED, "76571007", "Septic shock", 1)
        .lab("temperature", 38.9, 2)
        .labs(ferritin=6200, pct=18, crp=210, il6=400, platelets=80)
    )


def sepsis_immunoparalysis() -> Chart:
    return (
        Chart("case-sepsis-ip")
        .condition(*SEPSIS, 3)
        .lab("temperature", 37.6, 2)
        .labs(mhla_dr=3000, ferritin=1200, lymphocytes=0.5, pct=6, il6=150)
    )


def sjia_mas(patient: str = "case-sjia-mas") -> Chart:
    """Ravelli 2016: febrile sJIA, ferritin > 684 and 2 of platelets <= 181, AST > 48, TG > 156,
    fibrinogen <= 360; IL-18 22,000 pg/mL."""
    return (
        Chart(patient)
        .condition(ICD10CM, "M08.20", "Juvenile rheumatoid arthritis with systemic onset", 400)
        .lab("temperature", 39.4, 2)
        .labs(ferritin=5000, platelets=150, ast=120, triglycerides=220, fibrinogen=250, il18=22000)
    )


def sjia_mas_after_steroids() -> Chart:
    """MAS criteria still met four days after the first methylprednisolone pulse."""
    return (
        sjia_mas("case-sjia-refractory")
        .given(*METHYLPREDNISOLONE, hours_ago=96, dose_mg=1000)
        .given(*METHYLPREDNISOLONE, hours_ago=24, dose_mg=1000)
    )


def primary_hlh() -> Chart:
    """Familial HLH, first presentation: 5 HLH-2004 criteria, CXCL9 20,000 pg/mL."""
    return (
        Chart("case-primary-hlh")
        .condition(*FAMILIAL_HLH, 2)
        .lab("temperature", 39.1, 2)
        .labs(cxcl9=20000, ifng=300, ferritin=8000, hemoglobin=7.5, platelets=40, neutrophils=0.8,
              triglycerides=400, fibrinogen=100, sil2r=5000)
    )  # fmt: skip


def primary_hlh_refractory() -> Chart:
    chart = (
        Chart("case-primary-hlh-refractory")
        .condition(*FAMILIAL_HLH, 20)
        .given(*ETOPOSIDE, hours_ago=24 * 17, dose_mg=150)
        .given(*ETOPOSIDE, hours_ago=24 * 14, dose_mg=150)
        .given(*ETOPOSIDE, hours_ago=24 * 10, dose_mg=150)
        .given(*DEXAMETHASONE, hours_ago=24, dose_mg=10)
        .lab("temperature", 39.0, 2)
        .labs(cxcl9=15000, ifng=250, ferritin=9000, hemoglobin=7.8, platelets=35, neutrophils=0.7,
              triglycerides=380, fibrinogen=110, sil2r=6000)
    )  # fmt: skip
    return chart


def primary_hlh_day1() -> Chart:
    """HLH-94 day 1: the first etoposide and dexamethasone doses 6 hours ago."""
    return (
        primary_hlh()
        .given(*ETOPOSIDE, hours_ago=6, dose_mg=150)
        .given(*DEXAMETHASONE, hours_ago=6, dose_mg=10)
    )


def primary_hlh_etoposide_ordered() -> Chart:
    return primary_hlh().ordered(*ETOPOSIDE, hours_ago=1)


def familial_hlh_four_criteria(patient: str = "case-familial-hlh-4") -> Chart:
    """ORPHA:540 familial HLH with 4 laboratory criteria known (no sCD25 result)."""
    return (
        Chart(patient)
        .condition(*FAMILIAL_HLH, 30)
        .lab("temperature", 39.0, 2)
        .labs(cxcl9=15000, ifng=250, ferritin=9000, hemoglobin=7.8, platelets=35, neutrophils=0.7,
              triglycerides=380, fibrinogen=110)
    )  # fmt: skip


def familial_hlh_quiescent() -> Chart:
    """ORPHA:540 familial HLH recorded 400 days ago; afebrile, normal ferritin and fibrinogen."""
    return (
        Chart("case-familial-hlh-quiescent")
        .condition(*FAMILIAL_HLH, 400)
        .lab("temperature", 36.8, 2)
        .labs(ferritin=80, fibrinogen=300, triglycerides=120, hemoglobin=12.5, platelets=210,
              neutrophils=3.5)
    )  # fmt: skip


def familial_hlh_one_fever() -> Chart:
    """ORPHA:540 familial HLH recorded 400 days ago, febrile today; ferritin, fibrinogen and
    triglycerides normal: one fever is no sign of HLH activity."""
    return (
        Chart("case-familial-hlh-fever")
        .condition(*FAMILIAL_HLH, 400)
        .lab("temperature", 38.9, 2)
        .labs(ferritin=150, fibrinogen=320, triglycerides=130, hemoglobin=12.1, platelets=190,
              neutrophils=6.5)
    )  # fmt: skip


def familial_hlh_refractory() -> Chart:
    return (
        familial_hlh_four_criteria("case-familial-hlh-refractory")
        .given(*ETOPOSIDE, hours_ago=24 * 21, dose_mg=150)
        .given(*ETOPOSIDE, hours_ago=24 * 17, dose_mg=150)
        .given(*DEXAMETHASONE, hours_ago=24, dose_mg=10)
    )


def ebv_hlh() -> Chart:
    return (
        Chart("case-ebv-hlh")
        .condition(ICD10CM, "D76.2", "Hemophagocytic syndrome, infection-associated", 2)
        .condition(ICD10CM, "B27.00", "Gammaherpesviral mononucleosis without complication", 5)
        .lab("temperature", 39.3, 2)
        .labs(ferritin=12000, hemoglobin=8.0, platelets=50, neutrophils=0.9, triglycerides=350,
              fibrinogen=120, ifng=200)
    )  # fmt: skip


def hlh_hscore(patient: str, age: int | None, *, cytopenias: bool = False) -> Chart:
    """HLH (D76.1) with HScore 212 or more (fever 39.6 °C, ferritin 8,000, triglycerides 400
    mg/dL, fibrinogen 200 mg/dL, AST 80) but 3 HLH-2004 criteria known met (no cytopenias,
    no sCD25): HLH-2004 is not met. `cytopenias`: two lines and sCD25 5,000 U/mL as well,
    HLH-2004 met (5 of 8)."""
    chart = (
        Chart(patient)
        .condition(ICD10CM, "D76.1", "Hemophagocytic lymphohistiocytosis", 2)
        .lab("temperature", 39.6, 2)
        .labs(ferritin=8000, triglycerides=400, fibrinogen=200, ast=80)
    )
    if cytopenias:
        chart = chart.labs(hemoglobin=8.0, platelets=50, neutrophils=0.8, sil2r=5000)
    else:
        chart = chart.labs(hemoglobin=11.0, platelets=180, neutrophils=2.5)
    return chart.aged(age) if age is not None else chart.age_unknown()


def hlh_child_hscore_only() -> Chart:
    return hlh_hscore("case-hlh-child-hscore", 6)


def hlh_child_hlh2004() -> Chart:
    return hlh_hscore("case-hlh-child-hlh2004", 6, cytopenias=True)


def hlh_with_mas_code() -> Chart:
    """HLH-2004 met (5 of 8) in an adult whose chart codes the HLH as a macrophage activation
    syndrome (SNOMED 430478003), not D76.1."""
    return (
        Chart("case-hlh-mas-code")
        .condition(SNOMED, "430478003", "Macrophage activation syndrome", 2)
        .lab("temperature", 39.6, 2)
        .labs(ferritin=8000, triglycerides=400, fibrinogen=200, ast=80, hemoglobin=8.0,
              platelets=50, neutrophils=0.8, sil2r=5000)
        .aged(45)
    )  # fmt: skip


def hlh_with_bacterial_pneumonia() -> Chart:
    """Infection-associated HLH (D76.2, HLH-2004 met) with a bacterial pneumonia recorded."""
    return (
        hlh_hscore("case-hlh-pneumonia", 45, cytopenias=True)
        .condition(ICD10CM, "D76.2", "Hemophagocytic syndrome, infection-associated", 2)
        .condition(ICD10CM, "J15.9", "Bacterial pneumonia", 2)
        .labs(pct=30)
    )


def hlh_with_sepsis_cause_unstated() -> Chart:
    """The same with sepsis coded without its cause (A41.9): no proof of a bacterial trigger
    (a viral HLH can look septic), so HLH-94 stays the first line named."""
    return (
        hlh_hscore("case-hlh-sepsis", 45, cytopenias=True)
        .condition(ICD10CM, "D76.2", "Hemophagocytic syndrome, infection-associated", 2)
        .condition(*SEPSIS, 2)
    )


def mas_coded_hlh_with_ebv() -> Chart:
    """HLH coded as a macrophage activation syndrome, with an EBV infection recorded: the MAS
    code keeps the trigger first (etoposide is no first line in MAS)."""
    return hlh_with_mas_code().condition(
        ICD10CM, "B27.00", "Gammaherpesviral mononucleosis without complication", 3
    )


def sepsis_immunoparalysis_born_18_years_ago_this_year() -> Chart:
    """Only the birth year is recorded, 18 years back: 17 or 18 today."""
    chart = sepsis_immunoparalysis()
    chart.birth_date = str(date.today().year - 18)
    return chart


def ebv_hlh_with_sepsis_suspected() -> Chart:
    """EBV-HLH with sepsis as a working (provisional) diagnosis: HLH-94 stays first-line."""
    return ebv_hlh().condition(*SEPSIS, 1, verification="provisional")


def ebv_hlh_with_bacterial_pneumonia() -> Chart:
    """EBV-HLH with a confirmed bacterial pneumonia: EBV-HLH's first line is still HLH-94."""
    return ebv_hlh().condition(ICD10CM, "J15.9", "Bacterial pneumonia", 1)


def hlh_with_tuberculosis() -> Chart:
    """HScore-probable HLH (adult) with tuberculosis recorded."""
    return hlh_hscore("case-hlh-tb", 45).condition(SNOMED, "56717001", "Tuberculosis", 10)


def hlh_adult_hscore_only() -> Chart:
    return hlh_hscore("case-hlh-adult-hscore", 45)


def hlh_age_unknown_hscore_only() -> Chart:
    return hlh_hscore("case-hlh-age-unknown-hscore", None)


def aosd_mas_adult() -> Chart:
    """Adult-onset Still's disease (M06.1) in a 34-year-old meeting MAS-2016."""
    return (
        Chart("case-aosd-mas-adult")
        .aged(34)
        .condition(ICD10CM, "M06.1", "Adult-onset Still's disease", 300)
        .lab("temperature", 39.2, 2)
        .labs(ferritin=9000, platelets=140, ast=110, triglycerides=240, fibrinogen=230)
    )


def isolated_il6() -> Chart:
    """IL-6 100 pg/mL after surgery: normal ferritin, no fever, CRP 30 mg/L."""
    return (
        Chart("case-isolated-il6")
        .lab("temperature", 37.0, 2)
        .labs(il6=100, ferritin=150, crp=30, il18=300, ifng=5)
    )


def febrile_hyperferritinaemia() -> Chart:
    """Ferritin 8,000 ng/mL, fever and CRP 160 mg/L, no cytokine result, no setting recorded."""
    return Chart("case-ferritin-fever").lab("temperature", 39.2, 2).labs(ferritin=8000, crp=160)


def unknown_il6_pattern() -> Chart:
    return (
        Chart("case-unknown-il6")
        .lab("temperature", 39.0, 2)
        .labs(il6=900, ferritin=2500, crp=200, il18=400, ifng=10)
    )


def unknown_il6_after_sarilumab() -> Chart:
    """The IL-6 pattern's labs, measured three days after a sarilumab dose."""
    return unknown_il6_pattern().given(*SARILUMAB, hours_ago=72, dose_mg=200)


def sjia_mas_with_sepsis() -> Chart:
    return sjia_mas("case-sjia-sepsis").aged(10).condition(*SEPSIS, 1)


def primary_hlh_with_sepsis() -> Chart:
    return primary_hlh().condition(*SEPSIS, 1)


def unknown_il6_bound() -> Chart:
    """IL-6 reported only as "<100 pg/mL" (threshold > 80: either side), IL-18 and IFN-γ low."""
    return (
        Chart("case-unknown-il6-bound")
        .lab("temperature", 39.0, 2)
        .lab("il6", "<100 pg/mL", 2)
        .labs(ferritin=2500, crp=200, il18=400, ifng=10)
    )


def unknown_two_populations() -> Chart:
    """IL-6 11× Herold's COVID-19 cut-off, IFN-γ 4× Xu's paediatric-HLH one, no setting."""
    return (
        Chart("case-unknown-two-populations")
        .lab("temperature", 39.0, 2)
        .labs(il6=900, ifng=300, ferritin=2500, crp=200, il18=400)
    )


def unknown_one_population() -> Chart:
    """IL-18 and CXCL9 both against Mizuta 2019's sJIA cut-offs, no setting."""
    return (
        Chart("case-unknown-one-population")
        .lab("temperature", 39.0, 2)
        .labs(il6=5, il18=400_000, cxcl9=7_000, ferritin=8000, crp=160)
    )


def unreadable_il6(il6: float | str = ">5000") -> Chart:
    """IL-6 sent as text '>5000' without a unit (or another unusable value; no other
    cytokine), with fever and ferritin."""
    return (
        Chart(f"case-il6-{'text' if isinstance(il6, str) else 'implausible'}")
        .lab("temperature", 39.2, 2)
        .lab("il6", il6, 2)
        .labs(ferritin=8000, crp=160)
    )


def orders_together(*drafts: dict[str, Any]) -> dict[str, Any]:
    """One draftOrders Bundle with the orders of several."""
    return {**drafts[0], "entry": [entry for draft in drafts for entry in draft["entry"]]}


# --- the cases -----------------------------------------------------------------------------------

CASES: tuple[Case, ...] = (
    # Immune effector cell therapy
    Case("cart-day3-grade2", f"{LEE2019}; {LE2018}; {NEELAPU2017}", car_t_day3_grade2,
         suggest=("tocilizumab",), never=("emapalumab", "anakinra"),
         text=("CAR-T/bispecific, day 3", "ASTCT", "12 mg/kg under 30 kg")),
    Case("cart-day3-newer-device-unread", f"{LEE2019} (the support decides the grade)",
         lambda: car_t_day3_grade2("case-cart-device-unread").oxygen_device("Oxymizer", 0.5),
         suggest=("tocilizumab",), text=("ASTCT CRS grade ≥ 2", "could not be read")),
    Case("cart-day3-tocilizumab-order", f"{LE2018}", car_t_day3_grade2, hook="order-sign",
         orders=order(*TOCILIZUMAB), mismatch=False, never=("emapalumab",)),
    Case("cart-day3-tocilizumab-above-800-mg", f"{ACTEMRA} (CRS: at most 800 mg per infusion)",
         car_t_day3_grade2, hook="order-sign", orders=order(*TOCILIZUMAB, dose=1000),
         mismatch=False,
         text=("tocilizumab: 1,000 mg ordered, above the label maximum of 800 mg per infusion",
               "Actemra US label"), absent=("body weight",)),
    Case("cart-day3-tocilizumab-implausible-dose", "issue: an entry error is no dose to judge, "
         "and never a failed answer; it is said, never passed as within the limits",
         car_t_day3_grade2, hook="order-sign", orders=order(*TOCILIZUMAB, dose=1e50),
         mismatch=False,
         text=("tocilizumab: the dose could not be read, so the dose rule was not applied",
               "a dose of 1e+50 mg is not a plausible dose")),
    Case("cart-day3-tocilizumab-800-mg", f"{ACTEMRA} (CRS: at most 800 mg per infusion)",
         car_t_day3_grade2, hook="order-sign", orders=order(*TOCILIZUMAB, dose=800),
         no_cards=True),
    # Doses by weight (label: 8 mg/kg from 30 kg, 12 mg/kg under 30 kg, at most 800 mg; orders
    # up to 10 % above the weight-based dose are rounding to whole vials, HOPA 2018).
    Case("cart-tocilizumab-800-mg-at-50-kg", f"{ACTEMRA} (CRS: 8 mg/kg at 30 kg or more)",
         lambda: car_t_weighing(50), hook="order-sign", orders=order(*TOCILIZUMAB, dose=800),
         mismatch=False,
         text=("tocilizumab: 800 mg ordered for 50 kg, above the dose by weight labelled for CRS",
               "16 mg/kg a dose for the newest body weight (50 kg, charted ",
               " UTC); at this weight the limit is 400 mg (8 mg/kg)",
               "HOPA dose rounding")),
    Case("cart-tocilizumab-800-mg-at-110-lb", f"{ACTEMRA} (CRS: 8 mg/kg; weight in pounds)",
         lambda: car_t_weighing(110, unit="[lb_av]"), hook="order-sign",
         orders=order(*TOCILIZUMAB, dose=800), mismatch=False,
         text=("800 mg ordered for 49.9 kg",)),
    Case("cart-tocilizumab-rounded-up-to-a-vial", f"{ACTEMRA}; HOPA 2018 (rounding within 10 %)",
         lambda: car_t_weighing(72), hook="order-sign", orders=order(*TOCILIZUMAB, dose=600),
         no_cards=True),
    Case("cart-tocilizumab-per-kg-implausible-weight", f"{ACTEMRA} (CRS: at most 800 mg)",
         lambda: car_t_weighing(7000), hook="order-sign",
         orders=order(*TOCILIZUMAB, dose=8, unit="mg/kg"), mismatch=False,
         text=("no current body weight found; dose limits not checked",
               "a body weight charted could not be used (7000 kg is outside the plausible "
               "range")),
    Case("cart-tocilizumab-8-mg-per-kg-at-70-kg", f"{ACTEMRA} (CRS: 8 mg/kg)",
         lambda: car_t_weighing(70), hook="order-sign",
         orders=order(*TOCILIZUMAB, dose=8, unit="mg/kg"), no_cards=True),
    Case("cart-tocilizumab-8-mg-per-kg-at-120-kg", f"{ACTEMRA} (CRS: at most 800 mg)",
         lambda: car_t_weighing(120), hook="order-sign",
         orders=order(*TOCILIZUMAB, dose=8, unit="mg/kg"), mismatch=False,
         text=("8 mg/kg (960 mg) ordered, above the label maximum of 800 mg per infusion",)),
    Case("cart-tocilizumab-8-mg-per-kg-above-150-kg", f"{ACTEMRA} (CRS: at most 800 mg; a bed "
         "scale's bound is a least weight)",
         lambda: car_t_day3_grade2("case-cart-over-150kg").lab("body_weight", ">150 kg", 12),
         hook="order-sign", orders=order(*TOCILIZUMAB, dose=8, unit="mg/kg"), mismatch=False,
         text=("tocilizumab: 8 mg/kg ordered for a weight charted as >150 kg (at least 1,200 mg), "
               "above the label maximum of 800 mg per infusion",
               "The newest body weight is charted only as &gt;150 kg")),
    Case("cart-tocilizumab-8-mg-per-kg-no-weight", f"{ACTEMRA} (the dose by weight needs one)",
         car_t_day3_grade2, hook="order-sign", orders=order(*TOCILIZUMAB, dose=8, unit="mg/kg"),
         mismatch=False,
         text=("tocilizumab: 8 mg/kg ordered, no current body weight found; dose limits not "
               "checked",)),
    Case("cart-tocilizumab-800-mg-old-weight", f"{ACTEMRA} (a weight 10 days old is not used)",
         lambda: car_t_weighing(50, days_ago=10), hook="order-sign",
         orders=order(*TOCILIZUMAB, dose=800), no_cards=True),
    Case("cart-child-tocilizumab-12-mg-per-kg-at-25-kg", f"{ACTEMRA} (CRS: 12 mg/kg under 30 kg)",
         lambda: car_t_child_weighing(8, 25), hook="order-sign",
         orders=order(*TOCILIZUMAB, dose=12, unit="mg/kg"), no_cards=True),
    Case("cart-child-tocilizumab-12-mg-per-kg-at-40-kg", f"{ACTEMRA} (CRS: 8 mg/kg from 30 kg)",
         lambda: car_t_child_weighing(12, 40), hook="order-sign",
         orders=order(*TOCILIZUMAB, dose=12, unit="mg/kg"), mismatch=False,
         text=("12 mg/kg (480 mg) ordered for 40 kg", "the limit is 320 mg (8 mg/kg)")),
    Case("cart-day3-dexamethasone-order", f"{ASCO2021}", car_t_day3_grade2, hook="order-sign",
         orders=order(*DEXAMETHASONE, dose=10, per_day=4), mismatch=False),
    Case("cart-day3-emapalumab-order", f"{LEE2019}; IFN-γ is part of CRS (Teachey 2016)",
         car_t_day3_grade2, hook="order-sign", orders=order(*EMAPALUMAB), never=("emapalumab",),
         mismatch=False, text=("not labelled for CRS, tocilizumab is", "latent tuberculosis")),
    Case("cart-grade1", f"{LEE2019}; {ASCO2021} (grade 1: supportive care)", car_t_grade1,
         never=("tocilizumab", "dexamethasone", "emapalumab")),
    Case("cart-grade1-fever-4-days", f"{ASCO2021} (grade 1 with fever over 3 days: as grade 2)",
         car_t_grade1_fever_4_days, suggest=("tocilizumab",), never=("emapalumab",),
         text=("febrile for 4.0 days",)),
    Case("iechs-late-hypoxia-after-tocilizumab", f"{LEE2019} (fever waiver after treatment); "
         f"{HINES2023}", iec_hs_hypoxic_late_after_tocilizumab, named=("anakinra",),
         never=("tocilizumab", "anakinra", "dexamethasone"),
         text=("IEC-HS", "no longer waives fever",
               "the hypoxia without fever may still be CRS that it masks, IEC-HS or an infection")),
    Case("cart-day10-covid-hypoxic", f"{RECOVERY_DEX}; {LEE2019} (no CRS grade without fever)",
         covid_hypoxic_day10_after_car_t, suggest=("dexamethasone",),
         never=("emapalumab", "anakinra"),
         text=("Setting applied: COVID-19", "its rules were judged first and none of their")),
    Case("cart-day10-covid-no-temperature", f"{LEE2019} (fever required)",
         covid_hypoxic_after_car_t_no_temperature, never=("dexamethasone", "tocilizumab"),
         text=("Setting applied: CAR-T/bispecific", "no recent temperature")),
    Case("cart-day10-covid-oxygen-unknown", f"{RECOVERY_DEX} (oxygen need unknown)",
         covid_after_car_t_oxygen_unknown, never=("dexamethasone", "tocilizumab"),
         text=("Setting applied: COVID-19", "cannot be judged")),
    Case("cart-covid-hypoxic-late-after-tocilizumab", f"{RECOVERY_DEX}; {LEE2019} (fever "
         "waiver after treatment)", covid_hypoxic_late_after_tocilizumab,
         suggest=("dexamethasone",), never=("emapalumab", "anakinra"),
         text=("Setting applied: COVID-19", "no longer waives fever",
               "may still be CRS that it masks, IEC-HS or an infection")),
    Case("cart-hypoxic-on-room-air", f"{LEE2019} (hypoxia graded by the oxygen given)",
         car_t_hypoxic_on_room_air, never=("tocilizumab", "dexamethasone"),
         text=("ASTCT CRS grade ≥ 1", "tocilizumab cannot be judged",
               "SpO₂ 88 % on room air: it may need oxygen; chart the support given")),
    Case("cart-no-temperature", f"{LEE2019} (fever required)", car_t_no_temperature,
         never=("tocilizumab",),
         # The summary leads with the verdict: a client may show only the summary.
         text=("CAR-T/bispecific, day 3: cannot be judged: IEC-HS feature criteria",)),
    Case("cart-grade3-antiemetic-dexamethasone-order", f"{ASCO2021} (grade 3: dexamethasone)",
         car_t_grade3_with_antiemetic_dexamethasone, suggest=("tocilizumab", "dexamethasone"),
         absent=("already ordered",)),
    Case("cart-grade3", f"{LEE2019}; {ASCO2021} (grade 3: tocilizumab plus dexamethasone)",
         car_t_grade3, suggest=("tocilizumab", "dexamethasone"), never=("emapalumab",)),
    Case("cart-grade3-home-prednisone",
         f"{ASCO2021} (grade 3: dexamethasone; a low home dose is no CRS treatment)",
         car_t_grade3_home_prednisone, suggest=("tocilizumab", "dexamethasone"),
         text=("another corticosteroid is recorded", "dexamethasone still applies",
               "consider tocilizumab and dexamethasone"),
         absent=("already taken", "dexamethasone not drafted")),
    Case("cart-refractory-after-two-doses", f"{ACTEMRA}; {ASCO2021}", car_t_after_two_doses,
         suggest=("dexamethasone",), never=("emapalumab",),
         text=("IL-6 measured after tocilizumab",), absent=("dexamethasone cannot be judged",)),
    Case("cart-third-dose-order", f"{ACTEMRA} (a third dose is within the label)",
         car_t_after_two_doses, hook="order-sign", orders=order(*TOCILIZUMAB), mismatch=False),
    Case("cart-three-doses-in-24h", f"{ACTEMRA} (at most 3 doses in 24 h)", car_t_three_doses_24h,
         named=("tocilizumab",), suggest=("dexamethasone",), text=("3 doses",),
         absent=("dexamethasone cannot be judged",)),
    Case("cart-with-infection", f"{LE2018}; CAR-T labels (infection before infusion)",
         car_t_with_sepsis, suggest=("tocilizumab",), never=("emapalumab",),
         text=("Also recorded: Condition Sepsis (A41.9)",
               "(setting: Sepsis or bacterial infection)",
               "an active infection is recorded (boxed warning")),
    Case("cart-with-infection-order", f"{LE2018}; {ACTEMRA} (boxed warning)", car_t_with_sepsis,
         hook="order-sign", orders=order(*TOCILIZUMAB), mismatch=False,
         text=("label note", "boxed warning for serious infections",
               "this setting's rules do not withhold tocilizumab", "Sources: Actemra US label")),
    Case("cart-with-covid", f"{LE2018}; {ACTEMRA} (boxed warning)", car_t_with_covid,
         suggest=("tocilizumab",), text=("an active infection is recorded (boxed warning",)),
    Case("cart-tocilizumab-allergy", "Label: a recorded allergy removes the drug", car_t_allergic,
         never=("tocilizumab",), named=("tocilizumab",), text=("allergy",)),
    Case("iec-hs", f"{HINES2023}; clinical-settings.md 2.3 (off-label: advised, not drafted)",
         iec_hs, named=("anakinra",), never=("anakinra", "emapalumab", "tocilizumab"),
         text=("IEC-HS", "Ferritin (IEC-HS range)")),
    Case("iec-hs-febrile", f"{HINES2023} (as CRS resolves); {LEE2019}", iec_hs_febrile,
         named=("anakinra",), never=("anakinra", "emapalumab", "tocilizumab"),
         text=("IEC-HS",)),
    Case("cart-day1-well", f"{HINES2023}; {SETTINGS_REF}", car_t_day1_well,
         never=("anakinra", "tocilizumab", "emapalumab")),
    Case("crs-code-without-infusion", "clinical-settings.md 2.1 (recognised from an infusion or "
         f"a bispecific dose); {RECOVERY_TCZ}; {ACTEMRA} (COVID-19: ANC < 1,000/mm³)",
         covid_with_crs_code, suggest=("dexamethasone",), never=("tocilizumab",),
         text=("Setting applied: COVID-19",)),
    Case("cart-crs-coded-after-tocilizumab", f"{LEE2019} (fever not required after "
         f"tocilizumab); {ASCO2021}", car_t_crs_coded_after_tocilizumab,
         suggest=("tocilizumab", "dexamethasone"), never=("anakinra",),
         text=("CAR-T/bispecific, day 3", "ASTCT CRS grade 2")),
    Case("bispecific-new-crs-episode", f"{ACTEMRA} (limits per CRS episode); {MOREAU2022}",
         bispecific_new_episode, suggest=("tocilizumab",), never=("dexamethasone",)),
    Case("cart-grade-incomplete", f"{LEE2019} (grade from the oxygen support and blood "
         "pressure); clinical-settings.md 1.6 (say what was missing)", car_t_grade_incomplete,
         never=("tocilizumab", "emapalumab"),
         text=("ASTCT CRS grade ≥ 1", "cannot be judged", "blood pressure", "oxygen support")),
    Case("bispecific-grade2", f"{MOREAU2022}; {LEE2019}", bispecific_grade2,
         suggest=("tocilizumab",), never=("emapalumab",)),
    # Children: age-appropriate blood pressure, no draft of a rule written for adults
    Case("cart-child-normal-bp", f"{PALS2010}; {LEE2019}", car_t_child_normal_bp,
         never=("tocilizumab",), text=("ASTCT CRS grade 1", "3 years old", "76 mmHg", "PALS")),
    Case("cart-child-hypotensive", f"{PALS2010}; {LEE2019}; {ACTEMRA_CRS_AGE}",
         car_t_child_hypotensive, suggest=("tocilizumab",), never=("emapalumab",),
         text=("ASTCT CRS grade 2", "76 mmHg", "12 mg/kg under 30 kg")),
    Case("cart-infant-under-two", f"{PALS2010}; {ACTEMRA_CRS_AGE}", car_t_infant_hypotensive,
         named=("tocilizumab",), never=("tocilizumab",),
         text=("ASTCT CRS grade 2", "1 year old", "not labelled for CRS below 2 years")),
    Case("cart-adult-systolic-86", f"{LEE2019} (adult cut-off, unchanged)",
         car_t_adult_systolic_86, suggest=("tocilizumab",), text=("ASTCT CRS grade 2",)),
    Case("cart-age-unknown", f"{LEE2019} (adult cut-off when the age is not recorded)",
         car_t_age_unknown, suggest=("tocilizumab",),
         text=("ASTCT CRS grade 2", "age is not recorded")),
    Case("covid-child", f"{COVID_ADULT_LABELS}; {RECOVERY_DEX} (adult fixed dose)", covid_child,
         named=("dexamethasone", "tocilizumab", "baricitinib"),
         never=("dexamethasone", "tocilizumab", "baricitinib"),
         text=("6 years old", "specialist review", "no order drafted")),
    Case("covid-age-unknown", f"{RECOVERY_TCZ}; {RECOVERY_DEX} (age not recorded)",
         covid_age_unknown, suggest=("dexamethasone", "tocilizumab"), never=("baricitinib",),
         text=("age is not recorded",)),
    Case("covid-birth-date-unreadable", f"{RECOVERY_TCZ}; {RECOVERY_DEX} (age unknown)",
         covid_birth_date_unreadable, suggest=("dexamethasone", "tocilizumab"),
         never=("baricitinib",), text=("birth date could not be used",),
         absent=("age is not recorded",)),
    # COVID-19
    Case("covid-recovery-eligible", f"{RECOVERY_TCZ}; {RECOVERY_DEX}; {NIH_COVID}",
         covid_hypoxic, suggest=("dexamethasone", "tocilizumab"), named=("baricitinib",),
         never=("anakinra", "emapalumab", "baricitinib"), text=("alternatives, not both",)),
    Case("covid-after-tocilizumab", f"{NIH_COVID}; {ONTARIO_BARI} (one or the other)",
         covid_after_tocilizumab, never=("baricitinib", "tocilizumab", "dexamethasone"),
         named=("baricitinib",), text=("alternatives, not both",)),
    Case("covid-after-sarilumab", f"{NIH_COVID}; {ONTARIO_BARI} (one IL-6 blocker, not both)",
         covid_after_sarilumab, never=("baricitinib", "tocilizumab", "dexamethasone"),
         text=("an IL-6 blocker like tocilizumab",)),
    Case("covid-after-baricitinib", f"{NIH_COVID}; {ONTARIO_BARI} (one or the other)",
         covid_after_baricitinib, never=("baricitinib", "tocilizumab", "dexamethasone"),
         text=("alternatives, not both",)),
    Case("covid-neutropenia-baricitinib-unchecked",
         f"{ACTEMRA} (COVID-19: ANC < 1,000/mm³); baricitinib label limits not verified",
         covid_neutropenic, named=("tocilizumab",), never=("tocilizumab",),
         text=("baricitinib label's COVID-19 blood-count",)),
    Case("covid-mals-ferritin-low-hladr", f"{RECOVERY_TCZ}; {GIAMARELLOS2020}",
         covid_mals_low_hladr, suggest=("tocilizumab", "dexamethasone"), never=("anakinra",)),
    Case("covid-hladr-tocilizumab-order", f"{RECOVERY_TCZ}; {GIAMARELLOS2020}",
         covid_mals_low_hladr, hook="order-sign", orders=order(*TOCILIZUMAB), mismatch=False),
    Case("covid-tocilizumab-in-grams-above-800-mg", f"{ACTEMRA} (COVID-19: at most 800 mg)",
         covid_mals_low_hladr, hook="order-sign", orders=order(*TOCILIZUMAB, dose=1.2, unit="g"),
         mismatch=False, text=("1,200 mg ordered", "above the label maximum of 800 mg")),
    Case("covid-tocilizumab-recovery-band-at-70-kg", f"{RECOVERY_TCZ} (600 mg over 65-90 kg)",
         lambda: covid_hypoxic("case-covid-70kg").lab("body_weight", 70, 20), hook="order-sign",
         orders=order(*TOCILIZUMAB, dose=600), mismatch=False, absent=("by weight",)),
    Case("covid-tocilizumab-800-mg-at-50-kg", f"{ACTEMRA} (8 mg/kg); {RECOVERY_TCZ} (400 mg)",
         lambda: covid_hypoxic("case-covid-50kg").lab("body_weight", 50, 20), hook="order-sign",
         orders=order(*TOCILIZUMAB, dose=800), mismatch=False,
         text=("800 mg ordered for 50 kg, above the label's 8 mg/kg and RECOVERY's dose by weight",
               "the limit is 400 mg", "RECOVERY, Lancet 2021")),
    Case("covid-dexamethasone-order", f"{RECOVERY_DEX}", covid_mals_low_hladr, hook="order-sign",
         orders=order(*DEXAMETHASONE, dose=6), mismatch=False),
    Case("covid-baricitinib-order", f"{NIH_COVID}", covid_hypoxic, hook="order-sign",
         orders=order(*BARICITINIB, dose=4), mismatch=False, absent=("not an add-on",)),
    Case("covid-baricitinib-after-tocilizumab-order", f"{ONTARIO_BARI}", covid_after_tocilizumab,
         hook="order-sign", orders=order(*BARICITINIB, dose=4), mismatch=False,
         text=("baricitinib: an alternative to tocilizumab, not an add-on",
               "tocilizumab already given")),
    Case("covid-baricitinib-with-sarilumab-ordered", f"{ONTARIO_BARI}", covid_hypoxic,
         hook="order-sign", orders=orders_together(order(*BARICITINIB), order(*SARILUMAB)),
         mismatch=False, text=("baricitinib: an alternative to sarilumab",)),
    Case("covid-baricitinib-after-tocilizumab-allergic", f"{ONTARIO_BARI}; allergy removes it",
         lambda: covid_after_tocilizumab().allergy(*BARICITINIB), hook="order-sign",
         orders=order(*BARICITINIB, dose=4), mismatch=False,
         text=("an alternative to tocilizumab", "baricitinib: check the label first",
               "an allergy or intolerance")),
    Case("covid-tocilizumab-and-baricitinib-ordered-together", f"{ONTARIO_BARI}", covid_hypoxic,
         hook="order-sign", orders=orders_together(order(*TOCILIZUMAB), order(*BARICITINIB)),
         mismatch=False, text=("baricitinib is ordered with it", "tocilizumab is ordered with it")),
    Case("covid-on-dexamethasone", f"{RECOVERY_TCZ} (on top of corticosteroids)",
         covid_on_dexamethasone, suggest=("tocilizumab",), never=("dexamethasone",)),
    Case("covid-dexamethasone-ordered-8-days-ago", f"{RECOVERY_TCZ} (on top of corticosteroids)",
         covid_on_dexamethasone_ordered_8_days_ago, suggest=("tocilizumab",),
         never=("dexamethasone",), text=("already ordered", "still active")),
    Case("covid-prednisone-for-a-month", f"{NIH_COVID} (an equivalent dose of another "
         "corticosteroid)", covid_on_prednisone_for_a_month, suggest=("tocilizumab",),
         never=("dexamethasone",), text=("prednisone already taken since",)),
    Case("covid-home-prednisone",
         f"{RECOVERY_DEX}; {NIH_COVID} (dexamethasone 6 mg or an equivalent dose)",
         covid_home_prednisone, suggest=("dexamethasone", "tocilizumab"), never=("anakinra",)),
    Case("covid-on-methylprednisolone-32mg",
         f"{NIH_COVID} (an equivalent dose of another corticosteroid)", covid_on_methylprednisolone,
         suggest=("tocilizumab",), never=("dexamethasone",),
         text=("prednisone-equivalent",
               "needing oxygen: dexamethasone not suggested (methylprednisolone already given"),
         absent=("dexamethasone already given",)),
    *(
        Case(f"covid-on-methylprednisolone-{name}",
             f"{NIH_COVID} (an equivalent dose of another corticosteroid; its dose unknown)",
             lambda one_read=one_read: covid_on_methylprednisolone_unread(one_read=one_read),
             suggest=("tocilizumab",), named=("dexamethasone",),
             text=("another corticosteroid is recorded (methylprednisolone given ",
                   "dose not readable): whether it reaches this rule's dose could not be "
                   "checked"))
        for name, one_read in (("dose-unread", False), ("one-of-two-doses-unread", True))
    ),
    # 1 mg/kg at 70 kg: 70 mg, 87.5 mg prednisone-equivalent, above dexamethasone 6 mg's 40.
    Case("covid-on-methylprednisolone-1-mg-per-kg-at-70-kg",
         f"{NIH_COVID} (an equivalent dose of another corticosteroid, given per kg)",
         lambda: covid_on_methylprednisolone_per_kg(70), suggest=("tocilizumab",),
         never=("dexamethasone",),
         text=("about 88 mg prednisone-equivalent a day, its dose per kg at the current body "
               "weight of 70 kg",)),
    Case("covid-on-methylprednisolone-1-mg-per-kg-no-weight",
         f"{NIH_COVID} (another corticosteroid per kg, and no weight to read it by)",
         lambda: covid_on_methylprednisolone_per_kg(None), suggest=("tocilizumab",),
         named=("dexamethasone",), text=("dose not readable",)),
    Case("covid-higher-dose-dexamethasone-order", f"{RECOVERY_HIGHER}", covid_hypoxic,
         hook="order-sign", orders=order(*DEXAMETHASONE, dose=20, reason=FOR_COVID19),
         mismatch=False,
         text=("dexamethasone: higher dose: harm without ventilatory support",
               "about 133.4 mg prednisone-equivalent",
               "Respiratory support recorded: low-flow oxygen, 4 L/min, charted")),
    Case("covid-usual-dose-dexamethasone-order", f"{RECOVERY_DEX}; {RECOVERY_HIGHER}",
         covid_hypoxic, hook="order-sign", orders=order(*DEXAMETHASONE, dose=6), no_cards=True),
    Case("covid-dexamethasone-order-without-dose", f"{RECOVERY_DEX}", covid_hypoxic,
         hook="order-sign", orders=order(*DEXAMETHASONE), no_cards=True),
    Case("covid-higher-dose-dexamethasone-child", f"{RECOVERY_HIGHER} (adults only)", covid_child,
         hook="order-sign", orders=order(*DEXAMETHASONE, dose=20, reason=FOR_COVID19),
         absent=("RECOVERY higher-dose corticosteroids",)),
    *(
        Case(f"covid-higher-dose-dexamethasone-on-{name}",
             f"{RECOVERY_HIGHER} (patients on ventilatory support were not in this result)",
             chart, hook="order-sign",
             orders=order(*DEXAMETHASONE, dose=20, reason=FOR_COVID19), no_cards=True)
        for name, chart in (
            ("airvo", lambda: covid_support_unclear(device="AIRVO heated humidified")),
            ("ecmo", lambda: covid_support_unclear(device="ECMO")),
            ("an-unread-device", lambda: covid_support_unclear(device="Tracheostomy")),
            ("fio2-60", lambda: covid_support_unclear(fio2=60)),
        )
    ),
    Case("covid-higher-dose-methylprednisolone-no-indication", f"{RECOVERY_HIGHER}",
         covid_hypoxic, hook="order-sign", orders=order(*METHYLPREDNISOLONE, dose=1000),
         mismatch=False, text=("no indication recorded", "this does not apply")),
    # Methylprednisolone 2 mg/kg a day at 80 kg: 160 mg, 200 mg
    # prednisone-equivalent, above RECOVERY's higher dose.
    Case("covid-methylprednisolone-2-mg-per-kg-a-day-at-80-kg", f"{RECOVERY_HIGHER}",
         lambda: covid_hypoxic("case-covid-80kg").lab("body_weight", 80, 12), hook="order-sign",
         orders=order(*METHYLPREDNISOLONE, dose=2, unit="mg/kg/d", reason=FOR_COVID19),
         mismatch=False,
         text=("methylprednisolone: higher dose: harm without ventilatory support",
               "about 200 mg prednisone-equivalent",
               "2 mg/kg a day ordered: 160 mg a day for the newest body weight (80 kg, charted ")),
    Case("covid-higher-dose-dexamethasone-on-cpap",
         f"{RECOVERY_HIGHER} (patients on ventilatory support were not in this result)",
         covid_on_cpap, hook="order-sign",
         orders=order(*DEXAMETHASONE, dose=20, reason=FOR_COVID19), no_cards=True),
    Case("covid-no-oxygen", f"{RECOVERY_DEX} (no benefit without oxygen)", covid_no_oxygen,
         never=("dexamethasone", "tocilizumab", "baricitinib"), no_cards=True),
    Case("covid-no-oxygen-dexamethasone-order", f"{RECOVERY_DEX}", covid_no_oxygen,
         hook="order-sign", orders=order(*DEXAMETHASONE, dose=6, reason=FOR_COVID19),
         mismatch=True, text=("Respiratory support recorded: room air, charted",)),
    Case("covid-no-oxygen-antenatal-dexamethasone",
         f"{RECOVERY_DEX} (dexamethasone as COVID-19 therapy, not antenatal steroids)",
         covid_no_oxygen, hook="order-sign",
         orders=order(*DEXAMETHASONE, dose=6, per_day=2, reason=ANTENATAL), no_cards=True),
    Case("covid-no-oxygen-steroid-no-indication",
         f"{RECOVERY_DEX} (COVID-19 therapy only: an order of unstated indication is not removed)",
         covid_no_oxygen, hook="order-sign", orders=order(*PREDNISONE, dose=10),
         mismatch=False, text=("no indication",)),
    Case("covid-low-crp", f"{RECOVERY_TCZ} (CRP >= 75 mg/L)", covid_low_crp,
         suggest=("dexamethasone",), never=("tocilizumab", "baricitinib")),
    Case("covid-bacterial-pneumonia", f"{ACTEMRA} (no other concurrent active infection)",
         covid_with_pneumonia, suggest=("dexamethasone",), named=("tocilizumab",),
         never=("tocilizumab",)),
    # ICD-10-CM codes COVID-19's own sepsis as U07.1 with R65.2x: no "other" infection, so the
    # standard stays drafted, with the boxed warning beside it.
    Case("covid-septic-shock", f"{RECOVERY_TCZ}; {ACTEMRA} (boxed warning)", covid_septic_shock,
         suggest=("dexamethasone", "tocilizumab"),
         text=("Note: sepsis or septic shock is recorded with no cause stated",)),
    Case("covid-septic-shock-order", f"{RECOVERY_TCZ}; {ACTEMRA} (boxed warning)",
         covid_septic_shock, hook="order-sign", orders=order(*TOCILIZUMAB, dose=600),
         mismatch=False, text=("label note (COVID-19): sepsis or septic shock",)),
    Case("covid-septic-shock-with-pneumonia", f"{ACTEMRA} (no other concurrent active infection)",
         covid_septic_shock_and_pneumonia, suggest=("dexamethasone",), named=("tocilizumab",),
         never=("tocilizumab",), absent=("no cause stated",)),
    Case("covid-neutropenia", f"{ACTEMRA} (COVID-19: ANC < 1,000/mm³)", covid_neutropenic,
         suggest=("dexamethasone",), named=("tocilizumab",), never=("tocilizumab",)),
    # Sepsis
    Case("sepsis-il6", f"{LEISMAN2020}; {ACTEMRA} (boxed warning)", sepsis_il6,
         never=("tocilizumab", "anakinra", "emapalumab"),
         text=("Sepsis: cannot be judged: PROVIDE immunoparalysis criteria in sepsis; nothing "
               "drafted; no IL-6 blockade in bacterial sepsis",)),
    Case("sepsis-tocilizumab-order", f"{LEISMAN2020}", sepsis_il6, hook="order-sign",
         orders=order(*TOCILIZUMAB), mismatch=True),
    Case("sepsis-hydrocortisone-order", f"{SSC2021}", sepsis_il6, hook="order-sign",
         orders=order(*HYDROCORTISONE, dose=50, per_day=4), no_cards=True),
    Case("sepsis-mals", f"{PROVIDE}; {KINERET}", sepsis_mals, never=("anakinra", "tocilizumab"),
         text=("MALS",)),
    Case("sepsis-mals-anakinra-order", f"{PROVIDE}; {KINERET}", sepsis_mals, hook="order-sign",
         orders=order(*ANAKINRA), mismatch=False,
         text=("off-label in sepsis", "no difference in 28-day mortality",
               "IFN-γ for immunoparalysis counted together, not anakinra alone")),
    Case("sepsis-anakinra-without-mals", f"{KINERET}", sepsis_il6, hook="order-sign",
         orders=order(*ANAKINRA), mismatch=True),
    Case("sepsis-immunoparalysis", f"{PROVIDE}", sepsis_immunoparalysis,
         never=("tocilizumab", "anakinra", "dexamethasone", "methylprednisolone")),
    # No trial tested corticosteroids in immunoparalysis: a high dose is a caution, never a
    # delete, since some indications call for it whatever the HLA-DR.
    Case("sepsis-immunoparalysis-pulse-order", f"{PROVIDE}", sepsis_immunoparalysis,
         hook="order-sign", orders=order(*METHYLPREDNISOLONE, dose=1000), mismatch=False,
         text=("high dose, immunoparalysis criteria met", "caution, not a mismatch")),
    Case("sepsis-immunoparalysis-tablet-order", f"{PROVIDE} (dose from the tablet strength)",
         sepsis_immunoparalysis, hook="order-sign",
         orders=order("methylprednisolone 100 MG Oral Tablet", "6902", dose=1, unit="{tbl}"),
         mismatch=False, text=("125 mg prednisone-equivalent", "caution, not a mismatch")),
    Case("sepsis-immunoparalysis-meningitis-dexamethasone",
         "de Gans J, van de Beek D. Dexamethasone in adults with bacterial meningitis. "
         "N Engl J Med 2002;347:1549-56",
         sepsis_immunoparalysis, hook="order-sign",
         orders=order(*DEXAMETHASONE, dose=10, per_day=4, reason=PNEUMOCOCCAL_MENINGITIS),
         mismatch=False, text=("bacterial meningitis is standard care",)),
    *(
        Case(f"sepsis-immunoparalysis-{drug[0]}-order", f"{PROVIDE} (IFN-γ given, not blocked)",
             sepsis_immunoparalysis, hook="order-sign", orders=order(*drug), mismatch=False,
             text=("immunoparalysis criteria met", "opposite of what PROVIDE"))
        for drug in (EMAPALUMAB, BARICITINIB, ("ruxolitinib", "1193326"))
    ),
    Case("sepsis-mals-child", f"{PROVIDE} (adults)", lambda: sepsis_mals().aged(4),
         never=("anakinra",), text=("not applied: the patient is 4 years old",),
         absent=("MALS criterion met",)),
    Case("sepsis-immunoparalysis-child-emapalumab-order", f"{PROVIDE} (adults)",
         lambda: sepsis_immunoparalysis().aged(4), hook="order-sign", orders=order(*EMAPALUMAB),
         absent=("immunoparalysis",)),
    Case("sepsis-immunoparalysis-birth-year-emapalumab-order",
         f"{PROVIDE} (adults: a caution applies while the patient may be one)",
         sepsis_immunoparalysis_born_18_years_ago_this_year, hook="order-sign",
         orders=order(*EMAPALUMAB), mismatch=False, text=("opposite of what PROVIDE",)),
    Case("sepsis-immunoparalysis-infant", f"{PROVIDE} (adults)",
         lambda: sepsis_immunoparalysis().aged(1), text=("not applied: the patient is 1 year old",),
         absent=("immunoparalysis criteria met", "avoid escalating")),
    Case("sepsis-immunoparalysis-stress-hydrocortisone", f"{SSC2021}", sepsis_immunoparalysis,
         hook="order-sign", orders=order(*HYDROCORTISONE, dose=50, per_day=4), no_cards=True),
    # Still's disease / sJIA
    Case("sjia-mas-2016", f"{RAVELLI2016}; {EULAR2024}", sjia_mas,
         suggest=("methylprednisolone", "anakinra"), never=("emapalumab",),
         absent=("emapalumab cannot be judged",)),
    Case("sjia-emapalumab-first-order", f"{GAMIFANT}", sjia_mas, hook="order-sign",
         orders=order(*EMAPALUMAB), mismatch=True),
    Case("sjia-mas-on-maintenance-prednisone", f"{GAMIFANT} (after inadequate response to MAS "
         "treatment); {EULAR2024} (high-dose glucocorticoids)",
         lambda: sjia_mas("case-sjia-maintenance").taking(*PREDNISONE, 700 * 24, daily_mg=5)
         .lab("body_weight", 30, 24),
         suggest=("methylprednisolone",), never=("emapalumab",),
         absent=("MAS criteria still met after glucocorticoids",)),
    Case("sjia-mas-on-canakinumab", f"{EULAR2024} (anakinra for MAS, also on canakinumab)",
         lambda: sjia_mas("case-sjia-canakinumab").taking("canakinumab", "853491", 30 * 24,
                                                          daily_mg=10),
         suggest=("anakinra",), absent=("an IL-1 blocker like anakinra",),
         text=("another IL-1 blocker is recorded (canakinumab taken since",)),
    Case("sjia-emapalumab-order-on-prednisone-for-10-days",
         f"{GAMIFANT} (after inadequate glucocorticoid response)",
         sjia_mas_on_prednisone_for_10_days, hook="order-sign", orders=order(*EMAPALUMAB),
         mismatch=False, absent=("no glucocorticoid is recorded",)),
    Case("sjia-mas-after-glucocorticoids", f"{GAMIFANT} (after inadequate glucocorticoid response)",
         sjia_mas_after_steroids, named=("emapalumab",), never=("methylprednisolone",),
         text=("latent tuberculosis",)),
    # HLH
    Case("primary-hlh-first", f"{HENTER2007}; {LOCATELLI2020}", primary_hlh,
         never=("emapalumab", "anakinra"), text=("HLH-94",)),
    Case("primary-hlh-emapalumab-first-order", f"{GAMIFANT}", primary_hlh, hook="order-sign",
         orders=order(*EMAPALUMAB), mismatch=True),
    Case("primary-hlh-hlh94-day1", f"{GAMIFANT} (refractory disease only); {HENTER2007}",
         primary_hlh_day1, never=("emapalumab",), text=("Start HLH-94-type therapy",)),
    Case("primary-hlh-etoposide-ordered", f"{GAMIFANT} (refractory disease only); {HENTER2007}",
         primary_hlh_etoposide_ordered, never=("emapalumab",),
         text=("Start HLH-94-type therapy",)),
    Case("primary-hlh-day1-emapalumab-order", f"{GAMIFANT} (refractory disease only)",
         primary_hlh_day1, hook="order-sign", orders=order(*EMAPALUMAB), mismatch=True),
    Case("primary-hlh-refractory", f"{LOCATELLI2020}; {GAMIFANT}", primary_hlh_refractory,
         named=("emapalumab",), never=("anakinra",), text=("latent tuberculosis",)),
    Case("primary-hlh-emapalumab-12-mg-per-kg", f"{GAMIFANT} (at most 10 mg/kg)",
         primary_hlh_refractory, hook="order-sign",
         orders=order(*EMAPALUMAB, dose=12, unit="mg/kg", per_day=1), mismatch=False,
         text=("emapalumab: 12 mg/kg ordered, above the label's highest dose of 10 mg/kg",
               "No current body weight was found")),
    Case("primary-hlh-emapalumab-10-mg-per-kg", f"{GAMIFANT} (titrated to 10 mg/kg)",
         primary_hlh_refractory, hook="order-sign",
         orders=order(*EMAPALUMAB, dose=10, unit="mg/kg"), mismatch=False,
         absent=("highest dose", "not checked")),
    Case("familial-hlh-molecular-first", f"{HENTER2007} (a molecular diagnosis meets HLH-2004)",
         familial_hlh_four_criteria, never=("emapalumab",),
         text=("HLH-2004 met (primary HLH, active signs)", "Start HLH-94-type therapy")),
    Case("familial-hlh-molecular-refractory", f"{HENTER2007}; {GAMIFANT}",
         familial_hlh_refractory, named=("emapalumab",), never=("anakinra",),
         text=("HLH-2004 met (primary HLH, active signs)", "latent tuberculosis")),
    Case("familial-hlh-without-activity", f"{HENTER2007} (HLH-94 treats active disease; a project "
         "reading)", familial_hlh_quiescent, never=("emapalumab", "anakinra"),
         absent=("HLH-94", "HLH-2004 met")),
    Case("familial-hlh-one-fever", f"{HENTER2007} (HLH-94 treats active disease; a project "
         "reading)", familial_hlh_one_fever, never=("emapalumab", "anakinra", "dexamethasone"),
         absent=("HLH-94", "HLH-2004 met")),
    Case("ebv-hlh-first", f"{HENTER2007} (HLH-94 first-line in EBV-HLH)", ebv_hlh,
         never=("emapalumab",), text=("HLH-94",)),
    Case("ebv-hlh-emapalumab-order", f"{GAMIFANT} (primary HLH only)", ebv_hlh, hook="order-sign",
         orders=order(*EMAPALUMAB), mismatch=True),
    # A score is applied only in the ages it was derived in (HScore: adults).
    Case("hlh-child-hscore-not-applied", f"{FARDET2014}; {HENTER2007} (all ages)",
         hlh_child_hscore_only, never=("etoposide", "dexamethasone", "emapalumab", "anakinra"),
         text=("HScore cut-off (≥ 169, probable reactive HLH) not applied: the patient is 6 "
               "years old, and HScore was derived and validated in adults with suspected "
               "reactive haemophagocytic syndrome", "HLH-2004 criteria, used at all ages",
               "HLH-2004 diagnostic criteria (5 of 8) cannot be judged"),
         absent=("Discuss HLH-94-type therapy", "The recorded data meet the")),
    Case("hlh-child-hlh2004-met", f"{HENTER2007}; HLH-94, Henter, Blood 2002", hlh_child_hlh2004,
         never=("emapalumab", "anakinra"),
         text=("HLH-2004 diagnostic criteria (5 of 8)", "Start HLH-94-type therapy",
               "population: adults with suspected reactive haemophagocytic syndrome"),
         absent=("not applied",)),
    *(
        Case(case_id, "clinical-settings.md 2.5 (HLH-94 first-line in primary and EBV-HLH)",
             chart, never=("etoposide", "emapalumab"),
             text=("Discuss treatment with an HLH team, the trigger first",),
             absent=("Start HLH-94", "Discuss HLH-94-type therapy"))
        for case_id, chart in (
            ("hlh-coded-as-mas", hlh_with_mas_code),
            ("hlh-with-bacterial-pneumonia", hlh_with_bacterial_pneumonia),
            ("hlh-with-tuberculosis", hlh_with_tuberculosis),
            ("hlh-coded-as-mas-with-ebv", mas_coded_hlh_with_ebv),
        )
    ),
    *(
        Case(case_id, "clinical-settings.md 2.5 (HLH-94 first-line in EBV-HLH)", chart,
             never=("emapalumab",), text=(said,), absent=("the trigger first",))
        for case_id, chart, said in (
            ("ebv-hlh-with-sepsis-suspected", ebv_hlh_with_sepsis_suspected,
             "Discuss HLH-94-type therapy"),
            ("ebv-hlh-with-bacterial-pneumonia", ebv_hlh_with_bacterial_pneumonia,
             "Discuss HLH-94-type therapy"),
            ("hlh-with-sepsis-cause-unstated", hlh_with_sepsis_cause_unstated,
             "Start HLH-94-type therapy"),
        )
    ),
    Case("hlh-adult-hscore", f"{FARDET2014}", hlh_adult_hscore_only,
         never=("emapalumab", "anakinra"),
         text=("HScore cut-off (≥ 169, probable reactive HLH)", "Discuss HLH-94-type therapy"),
         absent=("not applied", "age is not recorded")),
    Case("hlh-age-unknown-hscore", f"{FARDET2014} (age not recorded: judged as before)",
         hlh_age_unknown_hscore_only, never=("emapalumab", "anakinra"),
         text=("Discuss HLH-94-type therapy", "whether the patient is in the population of "
               "HScore, adults with suspected reactive haemophagocytic syndrome"),
         absent=("not applied",)),
    Case("aosd-adult-mas-2016", f"{RAVELLI2016}; {EULAR2024} (Still's disease at all ages)",
         aosd_mas_adult, suggest=("methylprednisolone", "anakinra"), never=("emapalumab",),
         text=("MAS-2016 criteria met",), absent=("not applied",)),
    # Unknown setting
    Case("isolated-il6", SETTINGS_REF, isolated_il6, never=("tocilizumab",), no_cards=True),
    Case("febrile-hyperferritinaemia", f"{WEBB2020}; {PROVIDE} (a sepsis rule)",
         febrile_hyperferritinaemia, panel=True, never=("anakinra", "tocilizumab")),
    Case("unknown-il6-pattern", "clinical-settings.md 2.6 (pattern only, hedged)",
         unknown_il6_pattern, never=("tocilizumab", "anakinra", "emapalumab"),
         text=("depends on the clinical setting",
               "(*verify before relying on it:* the score threshold of 3")),
    Case("unknown-il6-after-sarilumab", "clinical-settings.md 1.4 (Nishimoto 2008: IL-6 "
         "receptor blockade stops IL-6 clearance)", unknown_il6_after_sarilumab,
         absent=("IL-6-predominant",)),
    Case("sjia-tocilizumab-order-with-sepsis", f"{ACTEMRA} (boxed warning: serious infections)",
         sjia_mas_with_sepsis, hook="order-sign", orders=order(*TOCILIZUMAB), mismatch=False,
         text=("not during an active infection",)),
    Case("hlh-tocilizumab-order-with-sepsis", f"{ACTEMRA} (boxed warning: serious infections)",
         primary_hlh_with_sepsis, hook="order-sign", orders=order(*TOCILIZUMAB),
         text=("not during an active infection",)),
    Case("unknown-il6-bound-inconclusive", "clinical-settings.md 2.6 (a result that settles no "
         "threshold is said, never an empty answer)", unknown_il6_bound, panel=True,
         never=("tocilizumab", "anakinra", "emapalumab"),
         text=("no usable IL-6 result in the last", "does not say on which side")),
    Case("unknown-tocilizumab-order", "clinical-settings.md 1.3 (no warning against standard care)",
         unknown_il6_pattern, hook="order-sign", orders=order(*TOCILIZUMAB), mismatch=False),
    Case("unknown-dexamethasone-order", "clinical-settings.md 1.3", febrile_hyperferritinaemia,
         hook="order-sign", orders=order(*DEXAMETHASONE, dose=6), mismatch=False, no_cards=True),
    Case("unknown-baricitinib-order", "clinical-settings.md 1.3", unknown_il6_pattern,
         hook="order-sign", orders=order(*BARICITINIB, dose=4), mismatch=False),
    Case("unknown-axes-from-two-populations", "clinical.md 2 (ratios of cut-offs from different "
         f"populations are not commensurable); {SETTINGS_REF}", unknown_two_populations,
         never=("tocilizumab", "anakinra", "emapalumab", "baricitinib"),
         text=("no clinical setting is recorded, so no cytokine axis is ranked",
               "Herold, J Allergy Clin Immunol 2020", "Xu, J Pediatr 2012"),
         absent=("axis leads", "IL-6-predominant")),
    Case("unknown-axes-from-two-populations-anakinra-order", "clinical-settings.md 2.6 (no "
         "targeted drug in an unknown setting)", unknown_two_populations, hook="order-sign",
         orders=order(*ANAKINRA), mismatch=False,
         never=("tocilizumab", "anakinra", "emapalumab", "baricitinib")),
    Case("unknown-axes-from-one-population", "Mizuta 2019 (IL-18 and CXCL9 cut-offs of one "
         "cohort: their ratios compare)", unknown_one_population,
         never=("anakinra", "emapalumab"), text=("IL-18, ferritin) axis leads",)),
    Case("unreadable-il6", "issue: a result that cannot be read is never silently missing",
         unreadable_il6, never=("tocilizumab",), text=("could not be used",)),
    Case("implausible-il6", "issue: a result outside the plausible range is an entry error, "
         "reported, never read as no result", lambda: unreadable_il6(-320),
         never=("tocilizumab",),
         text=("could not be used", "outside the plausible range", "no usable cytokine result")),
)  # fmt: skip
