"""Reading a draft order's dose and timing as EHRs write them: timing codes, times of day, the
most a timing allows, the ordered-dose extension wherever it sits, and `code` and `unit` that
disagree. An unreadable part is said to be unreadable: it never becomes "once a day"."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.fhir.draft_orders import (
    DraftMedication,
    daily_dose_mg,
    doses_a_day,
    medication_orders,
)
from cds_service.rules.orders import judge_orders
from cds_service.runtime import Runtime
from tests.conftest import hook_call, load_fixture
from tests.rules.charts import chart, finding
from tests.rules.test_dose_limits import NOW, weight
from tests.rules.test_setting_rules import (
    HIGH_DOSE_STEROID,
    assessed,
    high_dose_steroid_as_mismatch,
)

EPIC_ORDERED_DOSE = "https://open.epic.com/FHIR/StructureDefinition/extension/ordered-dose"


def order(dosage: dict[str, Any], drug: str = "methylprednisolone") -> DraftMedication:
    request = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"text": drug},
        "dosageInstruction": [dosage],
    }
    (read,) = medication_orders(request)
    return read


@pytest.mark.parametrize(
    ("timing", "per_day"),
    [
        (None, 1.0),  # no timing: one dose (one-off and daily pulse doses are written so)
        ({"event": ["2026-12-01T10:00:00Z"]}, 1.0),
        ({"code": {"coding": [{"code": "Q6H"}]}}, 4.0),
        ({"code": {"text": "bid"}}, 2.0),
        ({"code": "TID"}, 3.0),  # the abbreviation as a bare string
        ({"code": ["Q6H"]}, None),
        ({"code": {"coding": {"code": "Q8H"}}}, 3.0),
        ({"repeat": {"frequency": "4", "period": 1, "periodUnit": "d"}}, None),
        ("BID", None),
        ({"code": {"text": "as the team decides"}}, None),
        ({"repeat": {"timeOfDay": ["06:00:00", "12:00:00", "18:00:00", "24:00:00"]}}, 4.0),
        ({"repeat": {"when": ["MORN", "EVE"]}}, 2.0),
        ({"repeat": {"frequency": 1, "frequencyMax": 4, "period": 1, "periodUnit": "d"}}, 4.0),
        ({"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}, 3.0),
        ({"repeat": {"frequency": 0, "period": 1, "periodUnit": "d"}}, None),
        ({"repeat": {"frequency": -4, "period": 1, "periodUnit": "d"}}, None),
        ({"repeat": {"frequency": 1, "period": 6}}, None),  # a period without its unit
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "fortnight"}}, None),
        ({"repeat": "daily"}, None),
    ],
)
def test_doses_a_day_of_a_timing(timing: Any, per_day: float | None) -> None:
    assert doses_a_day(timing) == per_day


def test_a_timing_code_is_not_read_as_once_a_day() -> None:
    """Methylprednisolone 80 mg every 6 h is 320 mg a day, not 80."""
    read = order(
        {
            "timing": {"code": {"coding": [{"code": "Q6H"}]}},
            "doseAndRate": [{"doseQuantity": {"value": 80, "unit": "mg"}}],
        }
    )
    assert (read.dose_mg, read.daily_dose_mg, read.dose_problem) == (80, 320, None)
    unread = order(
        {
            "timing": {"code": {"text": "per protocol"}},
            "doseAndRate": [{"doseQuantity": {"value": 80, "unit": "mg"}}],
        }
    )
    assert (unread.dose_mg, unread.daily_dose_mg) == (80, None)
    assert unread.dose_problem == "the frequency cannot be read"


def test_epic_ordered_dose_is_read_from_any_dose_and_rate_entry() -> None:
    """The volume in one entry, the rate and the ordered dose in another."""
    read = order(
        {
            "doseAndRate": [
                {
                    "rateQuantity": {"value": 100, "unit": "mL/h"},
                    "extension": [
                        {"url": EPIC_ORDERED_DOSE, "valueQuantity": {"value": 640, "unit": "mg"}}
                    ],
                },
                {"doseQuantity": {"value": 32, "unit": "mL"}},
            ]
        },
        drug="tocilizumab",
    )
    assert read.dose_mg == 640


@pytest.mark.parametrize(
    ("quantity", "per_dose", "a_day"),
    [
        # code and unit disagree on "a dose" or "a day": read as a dose, the larger
        ({"value": 2, "code": "mg/kg/d", "unit": "mg/kg/dose"}, 2.0, None),
        ({"value": 2, "code": "mg/kg", "unit": "mg/kg/day"}, 2.0, None),
        # A code that is no unit (an EHR's internal id) does not hide a readable unit.
        ({"value": 2, "code": "3001", "unit": "mg/kg/day"}, 0.5, 2.0),
        ({"value": 2, "code": "mg/kg/(24.h)"}, 0.5, 2.0),
        ({"value": 2, "unit": "mg/kg/24 hrs"}, 0.5, 2.0),
        ({"value": 2, "unit": "mg/kg/{dose}"}, 2.0, None),
    ],
)
def test_units_per_kg_as_ehrs_write_them(
    quantity: dict[str, Any], per_dose: float, a_day: float | None
) -> None:
    read = order(
        {
            "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": quantity}],
        }
    )
    assert (read.dose_mg_per_kg, read.daily_mg_per_kg) == (per_dose, a_day)


def test_a_day_s_dose_per_kg_of_unread_frequency_is_never_passed_silently(
    runtime: Runtime,
) -> None:
    """24 mg/kg a day of tocilizumab at 120 kg, its frequency unread: 2,880 mg a day, and one
    dose could be anything up to that. Within every limit even at once, it passes."""
    crs = assessed(runtime, chart(finding("iec", kind="car-t", day=3)))
    rules = runtime.knowledge.rules
    unread = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "x"}}

    def tocilizumab(mg_per_kg_a_day: float) -> DraftMedication:
        dose = {"value": mg_per_kg_a_day, "code": "mg/kg/d"}
        return order({"timing": unread, "doseAndRate": [{"doseQuantity": dose}]}, "tocilizumab")

    (found,) = judge_orders([tocilizumab(24)], crs, rules, NOW, weight=weight(120))
    assert found.kind == "dose-unknown"
    assert found.reason == (
        "24 mg/kg a day ordered, and the frequency cannot be read: the day's dose given at once "
        "would be above the label maximum of 800 mg per infusion"
    )
    assert judge_orders([tocilizumab(6)], crs, rules, NOW, weight=weight(120)) == []


@pytest.mark.parametrize(
    "quantity",
    [{"value": 1e50, "unit": "mg"}, {"value": 1e300, "unit": "ug"}, {"value": 0, "unit": "mg"},
     {"value": -1000, "unit": "mg"}],
)  # fmt: skip
def test_an_implausible_dose_is_unread_not_judged(quantity: dict[str, Any]) -> None:
    """An entry error is no dose: it would print as a number no card can hold."""
    read = order({"doseAndRate": [{"doseQuantity": quantity}]}, "tocilizumab")
    assert read.dose_mg is None
    assert read.dose_problem is not None and "is not a plausible dose" in read.dose_problem
    per_kg = order({"doseAndRate": [{"doseQuantity": {"value": 1.7e308, "unit": "mg/kg"}}]})
    assert (per_kg.dose_mg, per_kg.dose_mg_per_kg) == (None, None)


def test_single_objects_where_r4_has_arrays_are_read() -> None:
    """coding, dosageInstruction and the ordered-dose extension sent as one object."""
    request = {
        "resourceType": "MedicationRequest",
        "id": "d1",
        "medicationCodeableConcept": {
            "coding": {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "612865"}
        },
        "dosageInstruction": {
            "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mL"}}],
            "extension": {"url": EPIC_ORDERED_DOSE, "valueQuantity": {"value": 1000, "unit": "mg"}},
        },
    }
    (read,) = medication_orders({"resourceType": "Bundle", "entry": {"resource": request}})
    assert (read.rxnorm_codes, read.dose_mg) == (("612865",), 1000)


@pytest.mark.parametrize(
    "selection",
    [
        "MedicationRequest/d1",
        "MedicationRequest/d1/_history/2",
        "https://ehr.example.org/fhir/MedicationRequest/d1",
        "d1",
        "urn:uuid:5b8c2a44-0d1e-4c5f-9d7a-2f4a8e1c6b11",
    ],
)
def test_order_select_selections_name_an_order_as_clients_write_them(selection: str) -> None:
    drafts = {
        "resourceType": "Bundle",
        "entry": [
            {
                "fullUrl": "urn:uuid:5b8c2a44-0d1e-4c5f-9d7a-2f4a8e1c6b11",
                "resource": {"resourceType": "MedicationRequest", "id": "d1"},
            },
            {"resource": {"resourceType": "MedicationRequest", "id": "d2"}},
        ],
    }
    chosen = medication_orders(drafts, only=frozenset({selection}))
    assert [order.reference for order in chosen] == ["MedicationRequest/d1"]


def mg(value: float, sequence: float | None = None) -> dict[str, Any]:
    instruction: dict[str, Any] = {
        "doseAndRate": [{"doseQuantity": {"value": value, "unit": "mg"}}],
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
    }
    if sequence is not None:
        instruction["sequence"] = sequence
    return instruction


def ordered(*instructions: Any) -> DraftMedication:
    request = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"text": "methylprednisolone"},
        "dosageInstruction": list(instructions),
    }
    (read,) = medication_orders(request)
    return read


def test_several_dosage_instructions_are_combined_by_their_sequence() -> None:
    # The same sequence: given together, a day's doses add up.
    together = ordered(mg(60, 1), mg(60, 1))
    assert (together.dose_mg, together.daily_dose_mg, together.dose_problem) == (60, 120, None)
    assert not together.daily_is_floor
    # Different sequences: one after another (a taper); the heaviest day counts.
    taper = ordered(mg(40, 1), mg(60, 2.0), mg(20, 3))
    assert (taper.dose_mg, taper.daily_dose_mg, taper.dose_problem) == (60, 60, None)
    # No sequence: either could be meant; the heaviest day is a lower bound.
    unsequenced = ordered(mg(60), mg(60))
    assert (unsequenced.dose_mg, unsequenced.daily_dose_mg, unsequenced.daily_is_floor) == (
        60,
        60,
        True,
    )
    assert unsequenced.dose_problem == (
        "several dosage instructions without a sequence (given together, their doses would add up)"
    )


def test_what_cannot_be_read_never_lowers_a_dose() -> None:
    unread = ordered(mg(100, 1), {"sequence": 2, "text": "then taper as directed"})
    assert (unread.dose_mg, unread.daily_dose_mg, unread.daily_is_floor) == (100, 100, True)
    assert unread.dose_is_floor  # the unread instruction may hold a larger dose
    # On the chart, "at least" is no recorded dose: it is said to be unreadable.
    assert daily_dose_mg([{"text": "per protocol", "sequence": 1}, mg(16, 2)]) == (
        None,
        "dosage instruction 1: no dose quantity",
    )
    assert ordered(mg(60, 1), mg(60, 1)).dose_is_floor is False
    unread_timing = mg(60, 2)
    unread_timing["timing"] = {"code": "as the team decides"}
    timing_only = ordered(mg(40, 1), unread_timing)
    assert (timing_only.dose_mg, timing_only.daily_dose_mg) == (60, 40)
    assert timing_only.daily_is_floor and not timing_only.dose_is_floor
    huge = ordered(mg(60, 10**400), mg(60, 10**400))
    assert (huge.daily_dose_mg, huge.daily_is_floor) == (120, False)
    assert unread.dose_problem == "dosage instruction 2: no dose quantity"
    # Junk among the instructions is no instruction; a lone readable one is read as such.
    lone = ordered("junk", mg(1000))
    assert (lone.dose_mg, lone.daily_dose_mg, lone.daily_is_floor) == (1000, 1000, False)
    # A first instruction per kg: read as the order's one instruction, weighed by the checks.
    per_kg = mg(8)
    per_kg["doseAndRate"][0]["doseQuantity"]["unit"] = "mg/kg"
    weighed = ordered(per_kg, mg(800))
    assert weighed.dose_mg_per_kg == 8
    assert weighed.daily_is_floor and weighed.dose_is_floor
    nothing = ordered({"text": "per protocol"}, {"text": "as directed"})
    assert (nothing.dose_mg, nothing.daily_dose_mg, nothing.dose_sent) == (None, None, True)


@pytest.mark.parametrize(
    ("dosage", "sent"),
    [
        ({"doseAndRate": [{"doseRange": {"low": {"value": 4}, "high": {"value": 8}}}]}, True),
        ({"doseAndRate": [{"doseQuantity": "1000 mg"}]}, True),
        ({"text": "8 mg/kg IV once"}, True),
        ({"timing": {"code": "QD"}}, False),
        ({"doseAndRate": [{"rateQuantity": {"value": 100, "unit": "mL/h"}}]}, False),
    ],
)
def test_a_dose_stated_in_any_form_counts_as_sent(dosage: dict[str, Any], sent: bool) -> None:
    assert order(dosage, "tocilizumab").dose_sent is sent


def test_a_timing_beyond_once_a_minute_is_unread_not_infinite() -> None:
    timing = {"repeat": {"frequency": 1e300, "period": 1e-300, "periodUnit": "s"}}
    assert doses_a_day(timing) is None
    read = order({"timing": timing, "doseAndRate": [{"doseQuantity": {"value": 8, "unit": "mg"}}]})
    assert (read.dose_mg, read.daily_dose_mg) == (8, None)


@pytest.mark.parametrize(
    ("instructions", "high"),
    [
        ([mg(60, 1), mg(60, 1)], True),  # 120 mg a day: 150 mg prednisone-equivalent
        ([mg(60, 1), mg(40, 2)], False),  # at most 60 mg a day: 75 mg
        ([mg(60), mg(60)], False),  # 60 or 120 mg a day: a caution says nothing on a guess
        ([mg(100, 1), {"sequence": 2, "text": "then taper"}], True),  # at least 100 mg a day
    ],
)
def test_the_day_of_split_doses_meets_the_immunoparalysis_rule(
    client: FlaskClient, instructions: list[dict[str, Any]], high: bool
) -> None:
    """Methylprednisolone in sepsis immunoparalysis is a caution from 100 mg
    prednisone-equivalent a day: two concurrent 60 mg doses reach it, though one dose does not."""
    orders = load_fixture("orders/methylprednisolone-pulse.json")
    orders["entry"][0]["resource"]["dosageInstruction"] = instructions
    response = hook_call(client, "order-sign", "case-sepsis-ip", orders)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert [card["source"]["topic"]["code"] for card in cards] == (["ordercaution"] if high else [])
    if high:
        assert "high dose, immunoparalysis criteria met" in cards[0]["summary"]
        assert "suggestions" not in cards[0]  # a caution never suggests deleting the order


def test_a_mismatch_rule_on_a_dose_says_when_the_day_cannot_be_added_up(
    runtime: Runtime,
) -> None:
    """Two 60 mg instructions without a sequence are 60 or 120 mg a day: a mismatch rule from
    100 mg says the dose could not be read, rather than guess either way."""
    result = assessed(runtime, chart(finding("sepsis")), mhla_dr=3000, ferritin=1200)
    rules = high_dose_steroid_as_mismatch(runtime.rules)
    (found,) = judge_orders([ordered(mg(60), mg(60))], result, rules, NOW)
    assert (found.kind, found.rule) == ("dose-unknown", HIGH_DOSE_STEROID)
    assert "without a sequence" in found.reason


def test_a_dose_sent_but_unreadable_is_said_for_a_drug_with_dose_limits(runtime: Runtime) -> None:
    """Tocilizumab as 40 mL with no ordered-dose extension: the 800 mg maximum cannot be checked,
    and passing it silently would look like a dose within it. A draft with no dose yet (order
    entry often starts so) has nothing to check."""
    crs = assessed(runtime, chart(finding("iec", kind="car-t", day=3)))
    rules = runtime.knowledge.rules
    volume = order({"doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mL"}}]}, "tocilizumab")
    (found,) = judge_orders([volume], crs, rules, NOW, weight=weight(70))
    assert (found.kind, found.rule) == ("dose-unknown", "tocilizumab-max-infusion")
    assert found.reason == "dose unit 'mL' is not a mass"
    no_dose = order({"timing": {"code": "QD"}}, "tocilizumab")
    assert not no_dose.dose_sent
    assert judge_orders([no_dose], crs, rules, NOW, weight=weight(70)) == []


def test_one_id_sent_twice_is_one_order_as_last_sent_unless_the_drug_differs() -> None:
    def entry(drug: str, value: float) -> dict[str, Any]:
        return {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "draft-1",
                "medicationCodeableConcept": {"text": drug},
                "dosageInstruction": [mg(value)],
            }
        }

    def bundle(*entries: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "entry": list(entries)}

    edited = medication_orders(bundle(entry("tocilizumab", 400), entry("tocilizumab", 800)))
    assert [order.dose_mg for order in edited] == [800]
    clash = medication_orders(bundle(entry("tocilizumab", 400), entry("anakinra", 100)))
    assert [order.names for order in clash] == [("tocilizumab",), ("anakinra",)]


def test_a_dose_limit_no_readable_instruction_exceeds_is_unchecked_when_one_is_unread(
    runtime: Runtime,
) -> None:
    """Tocilizumab as 40 mL and 100 mg: 100 mg is within 800, but the 40 mL may not be."""
    crs = assessed(runtime, chart(finding("iec", kind="car-t", day=3)))
    rules = runtime.knowledge.rules
    volume = {"doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mL"}}], "sequence": 1}
    both = medication_orders(
        {
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": {"text": "tocilizumab"},
            "dosageInstruction": [volume, mg(100, 2)],
        }
    )
    (found,) = judge_orders(both, crs, rules, NOW, weight=weight(70))
    assert (found.kind, found.rule) == ("dose-unknown", "tocilizumab-max-infusion")
    assert found.reason == "dosage instruction 1: dose unit 'mL' is not a mass"


def per_kg(value: float, sequence: int) -> dict[str, Any]:
    return {
        "sequence": sequence,
        "doseAndRate": [{"doseQuantity": {"value": value, "code": "mg/kg"}}],
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
    }


def test_of_several_instructions_per_kg_the_heaviest_is_weighed(runtime: Runtime) -> None:
    """A 4 mg/kg dose, then 12 mg/kg: the order checks weigh 12 mg/kg, whichever comes first,
    and the day is a lower bound (the other instruction is not added)."""
    for instructions in ((per_kg(4, 1), per_kg(12, 2)), (per_kg(12, 1), per_kg(4, 2))):
        read = ordered(*instructions)
        assert read.dose_mg_per_kg == 12 and read.dose_is_floor and read.daily_is_floor
    crs = assessed(runtime, chart(finding("iec", kind="car-t", day=3)))
    request = {
        "resourceType": "MedicationRequest",
        "id": "d",
        "medicationCodeableConcept": {"text": "tocilizumab"},
        "dosageInstruction": [per_kg(4, 1), per_kg(12, 2)],
    }
    orders = medication_orders({"resourceType": "Bundle", "entry": [{"resource": request}]})
    (found,) = judge_orders(orders, crs, runtime.knowledge.rules, NOW, weight=weight(50))
    assert found.rule == "tocilizumab-crs-by-weight"
    assert found.reason.startswith("12 mg/kg (600 mg) ordered for 50 kg")


def ratio(value: float, unit: str, days: float, day_unit: str = "d") -> dict[str, Any]:
    return {"numerator": {"value": value, "unit": unit},
            "denominator": {"value": days, "code": day_unit}}  # fmt: skip


@pytest.mark.parametrize(
    ("period", "daily"),
    [
        (ratio(2000, "mg", 1), 2000),
        (ratio(2, "g", 24, "h"), 2000),
        # A week's maximum says nothing of one day, nor does a volume: not read.
        (ratio(2000, "mg", 7), 4000),
        (ratio(20, "mL", 1), 4000),
    ],
)
def test_the_orders_maximum_a_day_caps_the_days_dose(period: dict[str, Any], daily: float) -> None:
    """1,000 mg four times a day, at most 2,000 mg a day (maxDosePerPeriod): 2,000 mg a day."""
    instruction = {
        "doseAndRate": [{"doseQuantity": {"value": 1000, "unit": "mg"}}],
        "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}},
        "maxDosePerPeriod": period,
    }
    read = ordered(instruction)
    assert read.dose_mg == 1000 and read.daily_dose_mg == daily


def test_a_maximum_a_day_caps_a_day_worked_out_by_weight() -> None:
    """2 mg/kg four times a day, at most 400 mg a day: at 80 kg 640 mg becomes 400 mg."""
    from cds_service.rules.orders import weighed

    instruction = {
        "doseAndRate": [{"doseQuantity": {"value": 2, "code": "mg/kg"}}],
        "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}},
        "maxDosePerPeriod": ratio(400, "mg", 1),
    }
    read = ordered(instruction)
    assert read.max_daily_mg == 400
    weighed_order = weighed(read, weight(80))
    assert weighed_order.dose_mg == 160 and weighed_order.daily_dose_mg == 400
