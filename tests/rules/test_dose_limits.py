"""Doses by body weight: an order read in mg/kg, turned into mg with the charted weight, and
judged against the shipped limits' weight bands (pure functions, the shipped rules file)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.evidence import LabValue
from cds_service.fhir.draft_orders import DraftMedication, medication_orders
from cds_service.rules.loader import BODY_WEIGHT, Rules
from cds_service.rules.orders import dose_above, judge_orders, weighed
from cds_service.rules.schema import DoseLimitSpec
from cds_service.runtime import Runtime
from tests.rules.charts import chart, finding
from tests.rules.test_setting_rules import assessed

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules(runtime: Runtime) -> Rules:
    return runtime.knowledge.rules


def limit(rules: Rules, limit_id: str) -> Any:
    return next(item for item in rules.dose_limits if item.id == limit_id)


def weight(kg: float, comparator: Any = None) -> LabValue:
    return LabValue(
        analyte=BODY_WEIGHT, value=kg, comparator=comparator, upper=None, unit="kg", family="mass",
        effective=NOW, status="final", reference_low=None, reference_high=None,
        interpretation=(), source="Observation/w",
    )  # fmt: skip


def draft(quantity: dict[str, Any], **dosage: Any) -> DraftMedication:
    request = {
        "resourceType": "MedicationRequest",
        "id": "d",
        "status": "draft",
        "medicationCodeableConcept": {"text": "tocilizumab"},
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": quantity}], **dosage}],
    }
    (order,) = medication_orders({"resourceType": "Bundle", "entry": [{"resource": request}]})
    return order


@pytest.mark.parametrize(
    ("quantity", "per_kg"),
    [
        ({"value": 8, "code": "mg/kg"}, 8.0),
        ({"value": 8, "unit": "MG/KG"}, 8.0),
        ({"value": 8, "unit": "mg / kg"}, 8.0),
        ({"value": 500, "code": "ug/kg"}, 0.5),
        ({"value": 500, "unit": "mcg/kg"}, 0.5),
        ({"value": 500, "unit": "µg/kg"}, 0.5),
        ({"value": 8, "unit": "mg/kg/dose"}, 8.0),
        ({"value": -8, "code": "mg/kg"}, None),
        ({"value": 8, "code": "mg/m2"}, None),
    ],
)
def test_a_dose_per_kg_is_read_in_mg_per_kg(quantity: dict[str, Any], per_kg: float) -> None:
    order = draft(quantity)
    assert order.dose_mg is None and order.dose_mg_per_kg == per_kg


FOUR_A_DAY = {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}}


@pytest.mark.parametrize(
    ("quantity", "timing", "per_dose", "a_day"),
    [
        ({"value": 2, "code": "mg/kg/d"}, None, 2.0, 2.0),  # UCUM; no timing: once a day
        ({"value": 2, "unit": "mg/kg/day"}, FOUR_A_DAY, 0.5, 2.0),
        ({"value": 2, "unit": "MG/KG/24H"}, FOUR_A_DAY, 0.5, 2.0),
        ({"value": 500, "unit": "mcg/kg/d"}, None, 0.5, 0.5),
        # The day's dose is known even where the doses a day are not.
        ({"value": 2, "code": "mg/kg/d"}, {"repeat": {"periodUnit": "fortnight"}}, None, 2.0),
        ({"value": 2, "code": "mg/d"}, None, None, None),  # not per kg (nor read as one dose)
    ],
)
def test_a_dose_per_kg_a_day_is_read_as_the_day_s_dose(
    quantity: dict[str, Any], timing: Any, per_dose: float | None, a_day: float | None
) -> None:
    order = draft(quantity, **({"timing": timing} if timing else {}))
    assert (order.dose_mg_per_kg, order.daily_mg_per_kg) == (per_dose, a_day)
    assert order.dose_mg is None and order.daily_dose_mg is None


@pytest.mark.parametrize("unit", ["g", "mg", "mg/kg"])
def test_a_dose_of_true_is_no_dose(rules: Rules, unit: str) -> None:
    """JSON `true` is no number (Python's bool is an int): not a dose of 1 g, nor 1 mg/kg."""
    order = draft({"value": True, "code": unit})
    assert (order.dose_mg, order.dose_mg_per_kg, order.dose_sent) == (None, None, True)
    assert order.dose_problem is not None and "no numeric value" in order.dose_problem
    assert dose_above(limit(rules, "tocilizumab-max-infusion"), order, weight(70)) is None


def test_a_dose_per_kg_a_day_becomes_mg_a_day_and_a_dose() -> None:
    order = draft({"value": 2, "code": "mg/kg/d"}, timing=FOUR_A_DAY)
    with_weight = weighed(order, weight(60))
    assert (with_weight.dose_mg, with_weight.daily_dose_mg) == (30, 120)
    assert with_weight.dose_problem is None
    assert weighed(order, None).dose_problem == (
        "2 mg/kg a day ordered, and no current body weight was found"
    )
    unread_timing = draft({"value": 2, "code": "mg/kg/d"}, timing={"repeat": {"periodUnit": "x"}})
    weighed_unread = weighed(unread_timing, weight(60))
    assert (weighed_unread.dose_mg, weighed_unread.daily_dose_mg) == (None, 120)
    assert weighed_unread.dose_problem == "the frequency cannot be read"


def test_the_dose_is_read_from_the_first_dose_and_rate_that_has_one() -> None:
    """An entry may carry only the infusion rate; one object in place of the array is read."""
    request = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"text": "tocilizumab"},
        "dosageInstruction": [
            {"doseAndRate": [{"rateQuantity": {"value": 100, "unit": "mL/h"}},
                             {"doseQuantity": {"value": 8, "code": "mg/kg"}}]}
        ],
    }  # fmt: skip
    (order,) = medication_orders(request)
    assert order.dose_mg_per_kg == 8
    request["dosageInstruction"] = [{"doseAndRate": {"doseQuantity": {"value": 600, "unit": "mg"}}}]
    (order,) = medication_orders(request)
    assert order.dose_mg == 600


def _typed(kind: str, quantity: dict[str, Any]) -> dict[str, Any]:
    system = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
    return {"type": {"coding": [{"system": system, "code": kind}]}, "doseQuantity": quantity}


def test_of_a_dose_ordered_per_kg_and_the_dose_calculated_from_it_the_mg_are_judged(
    rules: Rules,
) -> None:
    """R4 types doseAndRate entries "ordered" and "calculated": 8 mg/kg as ordered and the
    560 mg the EHR calculated from its dosing weight. The mg are what is given, in either
    order; with no weight charted the maximum is still checked."""
    per_kg = _typed("ordered", {"value": 8, "code": "mg/kg"})
    in_mg = _typed("calculated", {"value": 960, "code": "mg"})
    for pair in ([per_kg, in_mg], [in_mg, per_kg]):
        request = {
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": {"text": "tocilizumab"},
            "dosageInstruction": [{"doseAndRate": pair}],
        }
        (order,) = medication_orders(request)
        assert (order.dose_mg, order.dose_mg_per_kg, order.dose_problem) == (960, None, None)
        maximum = dose_above(limit(rules, "tocilizumab-max-infusion"), order, None)
        assert maximum is not None
        assert maximum.reason == "960 mg ordered, above the label maximum of 800 mg per infusion"
    # The EHR's dosing weight (120 kg) is not the charted one (70 kg): judged at 70 kg.
    crs = dose_above(limit(rules, "tocilizumab-crs-by-weight"), order, weight(70))
    assert crs is not None and crs.reason.startswith("960 mg ordered for 70 kg")


def test_of_two_doses_in_mg_the_larger_is_judged() -> None:
    """Two doses in mg that differ (the ordered one and one rounded to whole vials): the
    larger counts, so that a dose limit is not missed; one that is not a mass is passed over."""
    request = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"text": "tocilizumab"},
        "dosageInstruction": [
            {
                "doseAndRate": [
                    _typed("ordered", {"value": 15.6, "unit": "mL"}),
                    _typed("ordered", {"value": 560, "code": "mg"}),
                    _typed("calculated", {"value": 0.6, "code": "g"}),
                ]
            }
        ],
    }
    (order,) = medication_orders(request)
    assert order.dose_mg == 600


def test_a_dose_per_kg_a_day_is_judged_a_dose_at_a_time(rules: Rules) -> None:
    """The label allows up to three doses of tocilizumab in 24 h for CRS: a day's dose per kg
    is judged as the dose of each infusion, and the card says what was ordered."""
    crs = limit(rules, "tocilizumab-crs-by-weight")
    every_8_h = {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}
    usual = draft({"value": 24, "code": "mg/kg/d"}, timing=every_8_h)
    assert dose_above(crs, usual, weight(60)) is None  # 8 mg/kg a dose
    double = draft({"value": 36, "code": "mg/kg/d"}, timing=every_8_h)
    found = dose_above(crs, double, weight(60))
    assert found is not None
    assert found.reason == (
        "36 mg/kg a day (720 mg a dose) ordered for 60 kg, above the dose by weight labelled "
        "for CRS"
    )
    found = dose_above(crs, draft({"value": 48, "code": "mg/kg/d"}, timing=every_8_h), None)
    assert found is not None
    assert found.reason.startswith("48 mg/kg a day (16 mg/kg a dose) ordered, above")


def test_a_dose_per_kg_becomes_mg_with_the_weight_and_its_timing() -> None:
    order = draft(
        {"value": 2, "code": "mg/kg"},
        timing={"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
    )
    with_weight = weighed(order, weight(60))
    assert (with_weight.dose_mg, with_weight.daily_dose_mg) == (120, 240)
    assert with_weight.dose_problem is None
    without = weighed(order, None)
    assert without.dose_mg is None and without.daily_dose_mg is None
    assert without.dose_problem == "2 mg/kg ordered, and no current body weight was found"
    in_mg = draft({"value": 400, "code": "mg"})
    assert weighed(in_mg, weight(60)) is in_mg


@pytest.mark.parametrize(
    ("kg", "mg", "above"),
    [
        # RECOVERY's band (600 mg over 65 kg) is above the label's 8 mg/kg at 70 kg.
        (70, 600, False),
        (70, 661, True),  # 600 mg and the 10 % for rounding: 660 mg
        # At exactly 40 kg no fixed band holds (over 40 kg): 8 mg/kg, 352 mg with rounding.
        (40, 400, True),
        (40.5, 400, False),
        # At 90 kg: the label's 720 mg beats RECOVERY's 600; 800 mg is for over 90 kg.
        (90, 800, True),
        (91, 800, False),
        (30, 240, False),  # 8 mg/kg up to 40 kg
    ],
)
def test_covid19_tocilizumab_is_judged_by_the_larger_of_label_and_recovery(
    rules: Rules, kg: float, mg: float, above: bool
) -> None:
    covid = limit(rules, "tocilizumab-covid19-by-weight")
    found = dose_above(covid, draft({"value": mg, "code": "mg"}), weight(kg))
    assert (found is not None) == above


def test_crs_bands_change_at_30_kg(rules: Rules) -> None:
    crs = limit(rules, "tocilizumab-crs-by-weight")
    per_kg_12 = draft({"value": 12, "code": "mg/kg"})
    assert dose_above(crs, weighed(per_kg_12, weight(29.9)), weight(29.9)) is None
    found = dose_above(crs, weighed(per_kg_12, weight(30)), weight(30))
    assert found is not None
    assert found.reason == (
        "12 mg/kg (360 mg) ordered for 30 kg, above the dose by weight labelled for CRS"
    )
    assert "the limit is 240 mg (8 mg/kg), or 264 mg with the 10 % allowed" in found.detail
    assert found.cites == ("hopa_rounding2018",)


def test_without_a_weight_only_limits_of_per_kg_bands_judge_a_dose_per_kg(rules: Rules) -> None:
    covid = limit(rules, "tocilizumab-covid19-by-weight")  # fixed-dose bands: cannot be judged
    emapalumab = limit(rules, "emapalumab-max-per-kg")
    huge = draft({"value": 50, "code": "mg/kg"})
    assert dose_above(covid, huge, None) is None
    assert dose_above(emapalumab, draft({"value": 11, "code": "mg/kg"}), None) is None
    found = dose_above(emapalumab, huge, None)
    assert found is not None and found.reason.startswith("50 mg/kg ordered")
    # An order in mg needs a weight for every limit by weight.
    assert dose_above(emapalumab, draft({"value": 5000, "code": "mg"}), None) is None


def test_a_weight_given_as_a_bound_is_no_weight_to_dose_by(runtime: Runtime) -> None:
    """ ">150 kg" gives no dose in mg, but a least one: 8 mg/kg is at least 1,200 mg, above the
    800 mg maximum whatever the weight above 150 kg. 4 mg/kg (at least 600 mg) may be within
    it or not: the limits go unchecked, and the card says why."""
    crs = assessed(runtime, chart(finding("iec", kind="car-t", day=3)))
    rules = runtime.knowledge.rules
    eight = [draft({"value": 8, "code": "mg/kg"})]
    exact = judge_orders(eight, crs, rules, NOW, weight=weight(150))
    assert [(f.kind, f.rule) for f in exact] == [("dose-limit", "tocilizumab-max-infusion")]
    for comparator in (">", ">="):
        (above,) = judge_orders(eight, crs, rules, NOW, weight=weight(150, comparator))
        assert (above.kind, above.rule) == ("dose-limit", "tocilizumab-max-infusion")
        assert above.reason == (
            f"8 mg/kg ordered for a weight charted as {comparator}150 kg (at least 1,200 mg), "
            "above the label maximum of 800 mg per infusion"
        )
        assert "charted only as" in above.detail and "2026-12-01 12:00 UTC" in above.detail
    four = [draft({"value": 4, "code": "mg/kg"})]
    (unchecked,) = judge_orders(four, crs, rules, NOW, weight=weight(150, ">"))
    assert unchecked.kind == "weight-unknown"
    assert unchecked.detail == (
        "the newest body weight is charted only as >150 kg, too little to turn it into mg"
    )
    # An upper bound gives no least dose: unchecked, as with no weight.
    (below,) = judge_orders(eight, crs, rules, NOW, weight=weight(150, "<"))
    assert below.kind == "weight-unknown" and "charted only as <150 kg" in below.detail


@pytest.mark.parametrize(
    "bands",
    [
        [{"over_kg": 40, "mg": 400}],  # nothing up to 40 kg
        [{"below_kg": 30, "mg_per_kg": 12}, {"over_kg": 30, "mg_per_kg": 8}],  # 30 kg itself
    ],
)
def test_bands_that_leave_a_weight_without_a_limit_are_refused(bands: list[Any]) -> None:
    spec = {"id": "x", "drugs": ["tocilizumab"], "source": "s", "population": "p", "finding": "f"}
    with pytest.raises(ValueError, match="no band of by_weight holds"):
        DoseLimitSpec.model_validate({**spec, "by_weight": bands})
    DoseLimitSpec.model_validate({**spec, "by_weight": [*bands, {"mg_per_kg": 8}]})


def test_the_orders_own_maximum_a_dose_caps_a_dose_per_kg(runtime: Runtime) -> None:
    """ "8 mg/kg, at most 800 mg" (maxDosePerAdministration) is given as 800 mg at 150 kg, and
    for a weight charted only as ">150 kg": within the 800 mg maximum. A cap above the limit by
    weight still leaves the dose above it, and the card says the dose is the order's maximum."""
    crs = assessed(runtime, chart(finding("iec", kind="car-t", day=3)))
    rules = runtime.knowledge.rules
    cap = {"maxDosePerAdministration": {"value": 800, "unit": "mg"}}
    capped = [draft({"value": 8, "code": "mg/kg"}, **cap)]
    assert capped[0].max_dose_mg == 800
    uncapped = [draft({"value": 8, "code": "mg/kg"})]
    assert [f.rule for f in judge_orders(uncapped, crs, rules, NOW, weight=weight(150))] == [
        "tocilizumab-max-infusion"
    ]
    assert judge_orders(capped, crs, rules, NOW, weight=weight(150)) == []
    # Not above the maximum; the limit by weight stays unchecked, as for any bound.
    bound = judge_orders(capped, crs, rules, NOW, weight=weight(150, ">"))
    assert [f.kind for f in bound] == ["weight-unknown"]
    (above,) = judge_orders(
        [draft({"value": 12, "code": "mg/kg"}, **cap)], crs, rules, NOW, weight=weight(80)
    )
    assert above.rule == "tocilizumab-crs-by-weight"
    assert above.reason.startswith("12 mg/kg (800 mg, capped) ordered for 80 kg")
    assert above.detail.endswith("The order's maxDosePerAdministration caps the dose at 800 mg.")
    # A dose that lands on the cap was not lowered by it: it is not called capped.
    exact = judge_orders(
        [draft({"value": 10, "code": "mg/kg"}, **cap)], crs, rules, NOW, weight=weight(80)
    )
    assert [f.reason.split(" ordered")[0] for f in exact] == ["10 mg/kg (800 mg)"]
    # A cap lowers what is given, not what was ordered: 20 mg/kg of emapalumab is above the
    # label's 10 mg/kg with a 500 mg cap, at 50 kg as with no weight.
    emapalumab = limit(rules, "emapalumab-max-per-kg")
    capped_20 = draft(
        {"value": 20, "code": "mg/kg"}, maxDosePerAdministration={"value": 500, "unit": "mg"}
    )
    for charted in (weight(50), None):
        found = dose_above(emapalumab, capped_20, charted)
        assert found is not None and found.reason.startswith("20 mg/kg ordered")
    # A bound whose dose is above the cap gives the cap, said as such.
    big_cap = {"maxDosePerAdministration": {"value": 1000, "unit": "mg"}}
    (bounded,) = judge_orders(
        [draft({"value": 8, "code": "mg/kg"}, **big_cap)], crs, rules, NOW, weight=weight(150, ">")
    )
    assert "(1,000 mg, capped)" in bounded.reason and "at least" not in bounded.reason
    assert bounded.detail.endswith("caps the dose at 1,000 mg.")
    # A maximum that is no mass is not read, and caps nothing.
    volume = {"maxDosePerAdministration": {"value": 40, "unit": "mL"}}
    assert draft({"value": 8, "code": "mg/kg"}, **volume).max_dose_mg is None
