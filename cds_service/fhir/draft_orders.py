"""Read the medication orders in `context.draftOrders`, leniently.

Real clients send draft Bundles that fail strict R4 validation (the CDS Hooks sandbox omits
Bundle.type and sends MedicationRequest.category as one object), so only the fields the order
check needs are picked out, and anything unreadable is skipped rather than refused.

The drug is read from `medicationCodeableConcept`, or through `medicationReference`: to a
`Medication` entry of the same Bundle (Epic since February 2024; the reference may be relative,
absolute or the entry's `fullUrl`), to a `#contained` Medication, or, when neither is there, from
the reference's `display` alone (Epic before 2024). The dose is `doseQuantity`, or Epic's
`ordered-dose` dosage extension when `doseQuantity` is not a mass (of a dose ordered per kg and
the one calculated from it in mg, the one in mg); several dosage instructions are combined by
their `sequence`. A dose per kg of body weight
(mg/kg a dose, or mg/kg a day) is kept as such: the order checks turn it into mg with the charted
weight; of several instructions per kg, the heaviest per kg is the one weighed. The order's own
maxima (`maxDosePerAdministration`, `maxDosePerPeriod` over a day) are read as caps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cds_service.evidence.bundles import as_list, listed, resource_entries, text_at

RXNORM_SYSTEMS = frozenset(
    {"http://www.nlm.nih.gov/research/umls/rxnorm", "urn:oid:2.16.840.1.113883.6.88"}
)
# Doses per day from timing.repeat.periodUnit (UCUM time units used by FHIR).
_PER_DAY = {"s": 86400.0, "min": 1440.0, "h": 24.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30}
# Doses a day of the FHIR TimingAbbreviation codes (v3 GTSAbbreviation) that say it.
_TIMING_CODES = {"QD": 1.0, "AM": 1.0, "PM": 1.0, "BED": 1.0, "BID": 2.0, "TID": 3.0,
                 "QID": 4.0, "QOD": 0.5, "WK": 1 / 7, "MO": 1 / 30, "Q1H": 24.0, "Q2H": 12.0,
                 "Q3H": 8.0, "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "Q12H": 2.0}  # fmt: skip
_MEDICATION_TAIL = re.compile(r"Medication/[A-Za-z0-9.\-]{1,64}$")
_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001}
_MG_PER_KG = {f"{unit}/kg": factor for unit, factor in {**_MG, "µg": 0.001, "μg": 0.001}.items()}
# Beyond these a dose is an entry error (no single dose of any drug weighs a kilogram), and it
# would print as a number no card can hold.
MOST_MG = 1e6
_MOST_MG_PER_KG = 1e4
_MOST_A_DAY = 1440.0
# Spellings of "a day" after a dose per kg: UCUM "mg/kg/d", and order entry's "mg/kg/day".
_A_DAY = ("/d", "/day", "/days", "/24h", "/24hr", "/24hrs", "/24.h", "/(24.h)")
# Dose units that count tablets or capsules: the mg come from the strength in the drug's name.
_COUNTED = {"{tbl}", "{pill}", "{tablet}", "{capsule}", "{cap}", "tbl", "tab", "tablet",
            "tablets", "pill", "capsule", "capsules", "cap"}  # fmt: skip
_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(mg|g|mcg|ug)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DraftMedication:
    reference: str | None  # "MedicationRequest/<id>", when the draft has an id
    rxnorm_codes: tuple[str, ...]
    names: tuple[str, ...]  # text and coding displays, for matching by name
    daily_dose_mg: float | None  # None when dose or frequency cannot be read
    resource: Mapping[str, Any]
    dose_problem: str | None = None  # why the daily dose could not be read, for people
    dose_mg: float | None = None  # one dose (one infusion), when it can be read
    dose_mg_per_kg: float | None = None  # one dose, when it is ordered per kg of body weight
    doses_a_day: float | None = None  # from the timing (none: once a day), when it can be read
    daily_mg_per_kg: float | None = None  # when the order gives its dose per kg a day
    dose_sent: bool = False  # a dose is stated, read or not (a new draft may have none)
    # daily_dose_mg is only a lower bound: an instruction was unread, or an instruction of
    # several carries no sequence (given together, their doses would add up)
    daily_is_floor: bool = False
    # dose_mg is the largest of the instructions read, and one was not: a larger dose may be
    # among them
    dose_is_floor: bool = False
    # The first instruction's maxDosePerAdministration in mg ("8 mg/kg, at most 800 mg"): what
    # a dose per kg is given as at most, whatever the weight
    max_dose_mg: float | None = None
    capped: bool = False  # a dose per kg turned into mg was above max_dose_mg, and is it
    # Its maxDosePerPeriod over a day, in mg ("at most 2,400 mg in 24 h"): the day's dose is at
    # most this, whatever the weight and the frequency
    max_daily_mg: float | None = None


def medication_orders(
    draft_orders: Mapping[str, Any], only: frozenset[str] | None = None
) -> list[DraftMedication]:
    """The MedicationRequests of a draft Bundle (restricted to `only` references if given).

    An order sent twice under one id for the same drug (a client that appends an edited draft
    again) is one order, read as last sent: two entries would give the clinician the same card
    twice. Different drugs under one id stay two orders.
    """
    orders: dict[object, DraftMedication] = {}
    medications = _medications(draft_orders)
    for position, (entry, resource) in enumerate(_entries(draft_orders)):
        if resource.get("resourceType") != "MedicationRequest":
            continue
        resource_id = resource.get("id")
        reference = f"MedicationRequest/{resource_id}" if isinstance(resource_id, str) else None
        if only is not None and not _selected(entry, reference, only):
            continue
        codes, names = _medication(resource, medications)
        dosage = _instructions(resource.get("dosageInstruction"))
        read = _read_dosage(dosage, names)
        key = (reference, codes or names) if reference else position
        orders[key] = DraftMedication(
            reference=reference,
            rxnorm_codes=codes,
            names=names,
            resource=resource,
            dose_sent=any(_states_a_dose(instruction) for instruction in dosage),
            **read,
        )
    return list(orders.values())


def _read_dosage(dosage: list[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The dose fields of DraftMedication from the dosage instructions."""
    if len(dosage) > 1:
        heaviest = _heaviest_per_kg(dosage)
        if heaviest is not None:
            # Doses per kg (a loading dose, then the rest): the order checks weigh one
            # instruction, the heaviest per kg; the others make its day a lower bound.
            dosage = [heaviest, *(i for i in dosage if i is not heaviest)]
        else:
            several = _several_instructions(dosage, names)
            if several is not None:
                return _at_most_a_day(several, dosage, names)
    # One instruction, or several of which none is readable in mg, or doses per kg: the
    # first instruction (the heaviest per kg), as one order.
    one, problem = one_dose_mg(dosage, names)
    per_kg = ordered_per_kg(dosage) if one is None else None
    daily, frequency_problem = _times_a_day(one, dosage)
    a_day = doses_a_day(dosage[0].get("timing")) if dosage else None
    one_per_kg, daily_per_kg = None, None
    if per_kg is not None and per_kg.a_day:
        daily_per_kg = per_kg.mg_per_kg
        one_per_kg = daily_per_kg / a_day if a_day else None
    elif per_kg is not None:
        one_per_kg = per_kg.mg_per_kg
    most = _dose_mg(dosage[0].get("maxDosePerAdministration"), names)[0] if dosage else None
    read = {
        "max_dose_mg": most,
        "daily_dose_mg": daily,
        "dose_problem": problem or frequency_problem,
        "dose_mg": one,
        "dose_mg_per_kg": one_per_kg,
        "doses_a_day": a_day,
        "daily_mg_per_kg": daily_per_kg,
        "daily_is_floor": len(dosage) > 1,
        "dose_is_floor": len(dosage) > 1,
    }
    return _at_most_a_day(read, dosage, names)


def _heaviest_per_kg(dosage: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Of several instructions, the one with the largest dose per kg (a day's dose per kg
    over its doses a day), or None when none is ordered per kg."""
    heaviest, most = None, 0.0
    for instruction in dosage:
        per_kg = ordered_per_kg([instruction])
        if per_kg is None:
            continue
        a_day = doses_a_day(instruction.get("timing")) if per_kg.a_day else 1.0
        one = per_kg.mg_per_kg / a_day if a_day else per_kg.mg_per_kg
        if heaviest is None or one > most:
            heaviest, most = instruction, one
    return heaviest


def _at_most_a_day(
    read: dict[str, Any], dosage: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> dict[str, Any]:
    """The dose fields with the order's own daily maximum (maxDosePerPeriod over a day, the
    smallest of the instructions that state one) applied to the day's dose."""
    # Only one instruction's cap is its day's: of several, a cap is not the combined day's.
    caps = [m for m in (max_per_day_mg(i.get("maxDosePerPeriod"), names) for i in dosage) if m]
    if not caps or len(dosage) > 1:
        return read
    cap = min(caps)
    daily = read.get("daily_dose_mg")
    capped_daily = min(daily, cap) if daily is not None else None
    return {**read, "max_daily_mg": cap, "daily_dose_mg": capped_daily}


_DAY_UNITS = {"d": 1.0, "day": 1.0, "days": 1.0, "h": 1 / 24, "hour": 1 / 24, "hours": 1 / 24}


def max_per_day_mg(period: Any, names: Sequence[str] = ()) -> float | None:
    """maxDosePerPeriod (a Ratio: mg over a time) as mg a day, when its time is one day (1 d,
    24 h); None for any other period, which says nothing of one day."""
    if not isinstance(period, dict):
        return None
    mg = _dose_mg(period.get("numerator"), names)[0]
    denominator = period.get("denominator")
    if mg is None or not isinstance(denominator, dict):
        return None
    value = denominator.get("value", 1)
    unit = next(
        (u for u in (denominator.get("code"), denominator.get("unit")) if u in _DAY_UNITS), None
    )
    if unit is None or not _is_number(value):
        return None
    days = float(value) * _DAY_UNITS[str(unit)]
    return mg if abs(days - 1.0) < _ROUNDING_DAYS else None


_ROUNDING_DAYS = 1e-9


def _entries(bundle: Mapping[str, Any]) -> Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    if bundle.get("resourceType") not in ("Bundle", None):
        # A single resource instead of a Bundle: read it as the only order.
        return [({}, bundle)]
    return resource_entries(bundle)


def _selected(entry: Mapping[str, Any], reference: str | None, only: frozenset[str]) -> bool:
    """Whether order-select's `selections` name this order."""
    return any(_names(selection, entry, reference) for selection in only)


def _names(selection: str, entry: Mapping[str, Any], reference: str | None) -> bool:
    """Whether one selection names this entry: as "<Type>/<id>" (the spec, with or without
    "/_history/<version>"), an absolute URL ending so, the bare id, or the entry's fullUrl."""
    if selection == entry.get("fullUrl"):
        return True
    if reference is None:
        return False
    bare = reference.split("/", 1)[1]
    selection = selection.split("/_history/", 1)[0]  # a version of the order is the order
    return selection in (reference, bare) or selection.endswith(f"/{reference}")


def selections_not_sent(draft_orders: Mapping[str, Any], selections: frozenset[str]) -> list[str]:
    """The selections that name no entry of draftOrders (of any resource type): the hook
    sends the selected orders among the drafts, so these could not be checked."""
    named: list[tuple[Mapping[str, Any], str | None]] = []
    for entry, resource in _entries(draft_orders):
        rtype, rid = resource.get("resourceType"), resource.get("id")
        ok = isinstance(rtype, str) and isinstance(rid, str)
        named.append((entry, f"{rtype}/{rid}" if ok else None))
    return sorted(s for s in selections if not any(_names(s, e, ref) for e, ref in named))


def _medications(bundle: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The Bundle's Medication entries by every name a reference may use for them:
    `Medication/<id>` and the entry's `fullUrl`."""
    found: dict[str, Mapping[str, Any]] = {}
    if bundle.get("resourceType") not in ("Bundle", None):
        return found
    for entry, resource in resource_entries(bundle):
        if resource.get("resourceType") != "Medication":
            continue
        if isinstance(resource.get("id"), str):
            found[f"Medication/{resource['id']}"] = resource
        if isinstance(entry.get("fullUrl"), str):
            found[entry["fullUrl"]] = resource
    return found


def _medication(
    resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    concept = resource.get("medicationCodeableConcept")
    codes: list[str] = []
    names: list[str] = []
    if not isinstance(concept, dict):
        reference = resource.get("medicationReference")
        if isinstance(reference, dict) and isinstance(reference.get("display"), str):
            names.append(reference["display"])  # all Epic sent before 2024
        concept = _referenced_medication_code(resource, medications)
    if isinstance(concept.get("text"), str):
        names.append(concept["text"])
    for coding in listed(concept.get("coding")):
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and system in RXNORM_SYSTEMS and isinstance(code, str):
            codes.append(code.strip())
        if isinstance(coding.get("display"), str):
            names.append(coding["display"])
    return tuple(codes), tuple(names)


def _referenced_medication_code(
    resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The code of the Medication that medicationReference names: contained ("#med1"), or an
    entry of the Bundle (relative, absolute or by fullUrl)."""
    target = text_at(resource, "medicationReference", "reference")
    if target is None:
        return {}
    medication: Any = None
    if target.startswith("#"):
        medication = next(
            (
                item
                for item in as_list(resource.get("contained"))
                if isinstance(item, dict) and item.get("id") == target[1:]
            ),
            None,
        )
    else:
        medication = medications.get(target)
        match = _MEDICATION_TAIL.search(target)
        if medication is None and match:  # https://ehr/api/FHIR/R4/Medication/<id>
            medication = medications.get(match.group(0))
    code = medication.get("code") if isinstance(medication, dict) else None
    return code if isinstance(code, dict) else {}


# Epic sends the dose ordered (in mg) in a dosage extension when doseQuantity is the volume or
# amount given (15.6 mL of a 1,000 mg vial); ehr-dialects: "doseQuantity plus ordered-dose".
_ORDERED_DOSE = "/extension/ordered-dose"


def one_dose_mg(dosage: Any, names: Sequence[str] = ()) -> tuple[float | None, str | None]:
    """One dose in mg from the first dosage instruction, or None and why it cannot be read.

    A dose counted in tablets ({tbl}, {pill}) is multiplied by the strength written in the
    drug's name or code display ("methylprednisolone 100 MG Oral Tablet"). Of several
    doseAndRate doses (R4 types them "ordered" and "calculated") the largest in mg counts. When
    no `doseQuantity` is a mass (Epic: millilitres), Epic's `ordered-dose` extension, on the
    dosage or its doseAndRate, gives it.
    """
    first = _first(dosage)
    if first is None:
        return None, "no dosage instruction"
    doses, ordered = _dose_quantities(first)
    read = [_dose_mg(dose, names) for dose in doses]
    masses = [mg for mg, _ in read if mg is not None]
    if masses:
        # The dose as ordered (8 mg/kg) beside the one the EHR calculated from it (560 mg), or
        # two in mg that differ: the one in mg is what is given, the larger what is judged.
        return max(masses), None
    mg, problem = read[0] if read else _dose_mg(None, names)
    if ordered is not None:
        mg, ordered_problem = _dose_mg(ordered, names)
        if mg is None:
            problem = f"{problem}; Epic ordered-dose: {ordered_problem}"
    return mg, None if mg is not None else problem


class PerKg(NamedTuple):
    mg_per_kg: float
    a_day: bool  # the dose of a whole day ("mg/kg/d"), not of one dose


def ordered_per_kg(dosage: Any) -> PerKg | None:
    """A dose ordered per kg of body weight (mg/kg, mcg/kg, g/kg; a dose or a day), from the
    places `one_dose_mg` reads; None when it is not ordered per kg. Where `code` and `unit`
    disagree, the reading that gives the larger dose wins: a dose limit must not be missed."""
    first = _first(dosage)
    doses, ordered = _dose_quantities(first) if first is not None else ((), None)
    for quantity in (*doses, ordered):
        if not isinstance(quantity, dict) or not _is_number(quantity.get("value")):
            continue
        readings = [r for r in map(per_kg_unit, (quantity.get("code"), quantity.get("unit"))) if r]
        if readings:
            mg_per_kg = float(quantity["value"]) * max(factor for factor, _ in readings)
            if not 0 < mg_per_kg <= _MOST_MG_PER_KG:
                return None  # an entry error: the dose stays unread
            return PerKg(mg_per_kg, all(a_day for _, a_day in readings))
    return None


def per_kg_unit(unit: object) -> tuple[float, bool] | None:
    """(mg per unit of the mass, whether it is a day's dose) of a unit per kg, else None."""
    if not isinstance(unit, str):
        return None
    # "mg/kg/dose" and "mg/kg/{dose}" (spellings of order entry) are one dose per kg too.
    key = unit.strip().lower().replace(" ", "").removesuffix("/dose").removesuffix("/{dose}")
    a_day = key.endswith(_A_DAY)
    factor = _MG_PER_KG.get(key[: key.rindex("/")] if a_day else key)
    return (factor, a_day) if factor is not None else None


def _first(dosage: Any) -> Mapping[str, Any] | None:
    """The first dosage instruction (one object in place of the array is the only one)."""
    dosages = listed(dosage)
    return dosages[0] if dosages and isinstance(dosages[0], dict) else None


def _instructions(dosage: Any) -> list[Mapping[str, Any]]:
    return [item for item in listed(dosage) if isinstance(item, dict)]


_UNSEQUENCED = (
    "several dosage instructions without a sequence (given together, their doses would add up)"
)


def _several_instructions(
    instructions: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> dict[str, Any] | None:
    """The dose fields of an order with several dosage instructions, each read as an order of
    its own; None when none of them is readable in mg.

    R4 Dosage.sequence: instructions with the same sequence are given together (their day's
    doses add up), with different ones one after another (the heaviest day counts). What
    cannot be read never lowers a dose: one dose is the largest readable one, and where an
    instruction is unread or any lacks a sequence, the day's dose is the heaviest day read, a
    lower bound (`daily_is_floor`) that the order checks judge as "at least".
    """
    days: dict[object, float] = {}
    largest: float | None = None
    unread: list[str] = []
    doses_unread = False
    for number, instruction in enumerate(instructions, start=1):
        mg, problem = one_dose_mg([instruction], names)
        if mg is None:
            unread.append(f"dosage instruction {number}: {problem}")
            doses_unread = True
            continue
        largest = mg if largest is None else max(largest, mg)
        per_day = doses_a_day(instruction.get("timing"))
        if per_day is None:
            unread.append(f"dosage instruction {number}: the frequency cannot be read")
            continue
        group = _sequence(instruction.get("sequence"))
        key = ("given together", group) if group is not None else ("alone", number)
        days[key] = days.get(key, 0.0) + mg * per_day
    if largest is None:
        return None
    unsequenced = any(_sequence(i.get("sequence")) is None for i in instructions)
    return {
        "daily_dose_mg": max(days.values()) if days else None,
        "dose_problem": "; ".join([*unread, *([_UNSEQUENCED] if unsequenced else [])]) or None,
        "dose_mg": largest,
        "daily_is_floor": bool(unread) or unsequenced,
        "dose_is_floor": doses_unread,  # an unread frequency leaves every dose read
    }


def _sequence(value: object) -> int | None:
    """Dosage.sequence as an integer (1.0 as 1); None when absent or not a whole number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, float) and value.is_integer() else None


def _states_a_dose(instruction: Mapping[str, Any]) -> bool:
    """Whether the instruction states a dose in any form: a dose, a range, the ordered-dose
    extension or free text."""
    rates = [rate for rate in listed(instruction.get("doseAndRate")) if isinstance(rate, dict)]
    return (
        any("doseQuantity" in rate or "doseRange" in rate for rate in rates)
        or any(_ordered_dose(element) is not None for element in [instruction, *rates])
        or bool(instruction.get("text"))
    )


def first_dose_quantity(dosage: Any) -> Any:
    """The doseQuantity `one_dose_mg` reads (of the first dosage instruction), or None."""
    first = _first(dosage)
    doses = _dose_quantities(first)[0] if first is not None else ()
    return doses[0] if doses else None


def _dose_quantities(first: Mapping[str, Any]) -> tuple[tuple[dict[str, Any], ...], Any]:
    """(the doseQuantity of each doseAndRate that has one, Epic's ordered-dose) of a dosage
    instruction: an entry may carry only a rate, or a dose typed "ordered" beside one typed
    "calculated"; the ordered-dose extension is on the dosage or on a doseAndRate entry (None
    when there is none)."""
    rates = [rate for rate in listed(first.get("doseAndRate")) if isinstance(rate, dict)]
    doses = tuple(r["doseQuantity"] for r in rates if isinstance(r.get("doseQuantity"), dict))
    ordered = next((q for q in map(_ordered_dose, [first, *rates]) if q is not None), None)
    return doses, ordered


def daily_dose_mg(dosage: Any, names: Sequence[str] = ()) -> tuple[float | None, str | None]:
    """Total mg per day of the dosage instructions, or None and why it cannot be read.

    One dose (`one_dose_mg`) times the doses a day; several instructions are combined by their
    sequence (`_several_instructions`; where that gives only a lower bound, None). A dose
    without timing is read as once daily: that is how one-off and daily pulse doses are usually
    written, and it can only under-count a more frequent schedule.
    """
    read = _read_dosage(_instructions(dosage), names)
    if read["daily_is_floor"]:  # only "at least": a recorded dose is said to be unreadable
        return None, read["dose_problem"]
    return read["daily_dose_mg"], read["dose_problem"]


def daily_dose_mg_by_weight(dosage: Any, kg: float) -> float | None:
    """Total mg per day of a dose ordered per kg (a dose or a day), for a body weight of `kg`;
    None when the dose is not per kg or its frequency cannot be read (of several instructions,
    the first)."""
    instructions = _instructions(dosage)
    per_kg = ordered_per_kg(instructions)
    if per_kg is None:
        return None
    if per_kg.a_day:
        return per_kg.mg_per_kg * kg
    return _times_a_day(per_kg.mg_per_kg * kg, instructions)[0]


def _times_a_day(mg: float | None, dosage: Any) -> tuple[float | None, str | None]:
    """One dose's mg times the doses a day of the first dosage instruction's timing."""
    first = _first(dosage)
    if mg is None or first is None:
        return None, None
    per_day = doses_a_day(first.get("timing"))
    if per_day is None:
        return None, "the frequency cannot be read"
    return mg * per_day, None


def doses_a_day(timing: Any) -> float | None:
    """Doses a day of a FHIR Timing, the most it allows (frequencyMax); None when it cannot be
    read. No timing, or one of set times only (`event`), is one dose: how one-off and daily
    pulse doses are written. A timing whose meaning is not read is None, never once a day."""
    if timing is None:
        return 1.0
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, dict):
        return _repeat_a_day(repeat)
    if "code" in timing:
        concept = timing["code"]  # a CodeableConcept, or the abbreviation as a bare string
        concept = concept if isinstance(concept, dict) else {"text": concept}
        codes = [c.get("code") for c in listed(concept.get("coding")) if isinstance(c, dict)]
        for code in [*codes, concept.get("text")]:
            if isinstance(code, str) and code.strip().upper() in _TIMING_CODES:
                return _TIMING_CODES[code.strip().upper()]
        return None
    return 1.0 if "repeat" not in timing else None


def _repeat_a_day(repeat: Mapping[str, Any]) -> float | None:
    frequency = repeat.get("frequency")
    if frequency is None:
        # Times of day or named events ("MORN", "EVE") without a frequency: one dose at each.
        times = as_list(repeat.get("timeOfDay")) or as_list(repeat.get("when"))
        frequency = len(times) or 1
    most = repeat.get("frequencyMax")
    if isinstance(most, int | float) and not isinstance(most, bool):
        frequency = max(frequency, most) if isinstance(frequency, int | float) else frequency
    period = repeat.get("period", 1)
    unit = repeat.get("periodUnit", "d" if "period" not in repeat else None)
    per_day = _PER_DAY.get(str(unit))
    numbers = [frequency, period]
    if per_day is None or not all(isinstance(n, int | float) and not isinstance(n, bool)
                                  for n in numbers):  # fmt: skip
        return None
    if frequency <= 0 or period <= 0:
        return None
    a_day = float(frequency) * per_day / float(period)
    # More often than once a minute is no schedule but an entry error (and 1e300 doses a day
    # would make every dose infinite).
    return a_day if a_day <= _MOST_A_DAY else None


def _dose_mg(dose: Any, names: Sequence[str]) -> tuple[float | None, str]:
    """One dose in mg, or None and why not."""
    if not isinstance(dose, dict):
        return None, "no dose quantity"
    if not _is_number(dose.get("value")):
        return None, "the dose has no numeric value"
    unit = dose.get("code") or dose.get("unit")
    unit_key = str(unit).strip().lower() if unit is not None else ""
    factor = _MG.get(unit_key)
    if factor is None and unit_key in _COUNTED:
        factor = _strength_mg(names)
        if factor is None:
            return None, f"dose in {unit} with no strength in mg in the drug's name"
    if factor is None:
        return None, f"dose unit {unit!r} is not a mass" if unit else "dose without a unit"
    mg = float(dose["value"]) * factor
    if not 0 < mg <= MOST_MG:
        return None, f"a dose of {dose['value']:g} {unit} is not a plausible dose"
    return mg, ""


def _is_number(value: object) -> bool:
    """A JSON number; `true` is no dose of 1."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ordered_dose(element: Any) -> Any:
    """The valueQuantity of Epic's ordered-dose extension on `element`, if there is one."""
    if not isinstance(element, dict):
        return None
    for extension in listed(element.get("extension")):
        url = extension.get("url") if isinstance(extension, dict) else None
        if isinstance(url, str) and url.rstrip("/").endswith(_ORDERED_DOSE):
            return extension.get("valueQuantity")
    return None


def _strength_mg(names: Sequence[str]) -> float | None:
    """The strength of one tablet in mg from the first name that states one."""
    for name in names:
        match = _STRENGTH.search(name)
        if match is not None:
            return float(match.group(1)) * _MG[match.group(2).lower()]
    return None
