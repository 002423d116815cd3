"""Do the drugs being ordered fit the applied setting's rules? Pure functions.

An order gets a mismatch warning only from an `avoid` rule of the recorded setting (each with its
source); with no setting recorded there are none. Label safety checks run on every ordered drug
the rules know; stress-dose hydrocortisone is never judged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from cds_service.context.models import EMPTY_CHART, ChartContext
from cds_service.evidence import LabValue
from cds_service.fhir.draft_orders import DraftMedication
from cds_service.rules.assessment import Assessment
from cds_service.rules.conditions import all_hold
from cds_service.rules.engine import number
from cds_service.rules.loader import Rules
from cds_service.rules.schema import AvoidSpec, DoseLimitSpec, DrugSpec
from cds_service.rules.setting_rules import (
    LabelFinding,
    alternative_given,
    reads_oxygen_support,
    safety_findings,
)


class OrderFinding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # indication-unstated: an avoid rule about one indication, on an order that names none;
    # alternative: the setting's equal alternative is on the chart or in the same orders;
    # setting-caution: an avoid rule whose outcome is a caution, not a mismatch;
    # dose-limit: one dose above the label's maximum, fixed or for the charted body weight;
    # weight-unknown: a dose per kg with dose limits that need a body weight, and none found;
    # label-note: a label warning the setting's standard is given under (the order fits)
    kind: Literal[
        "mismatch", "caution", "dose-unknown", "needs-cytokines", "indication-unstated",
        "alternative", "setting-caution", "dose-limit", "weight-unknown", "label-note",
    ]  # fmt: skip
    order: str | None  # "MedicationRequest/<id>" of the draft
    drug: str  # drug id in the rules file
    drug_class: str
    recommend: str | None = None  # the drug to order instead (None: none named)
    rule: str | None = None  # the avoid or safety rule that fired
    source: str | None = None  # its source id
    reason: str = ""  # for people
    daily_dose_prednisone_mg: float | None = None
    alternative: str | None = None  # kind "alternative": the other drug of the pair
    detail: str = ""  # for people: how a limit was worked out (weight, bands, rounding)
    cites: tuple[str, ...] = ()  # sources besides `source` that the finding relies on


def identify_drug(order: DraftMedication, rules: Rules) -> str | None:
    """The rules' drug id for an order: by RxNorm ingredient code, else by name in the text.

    Orders often carry a clinical-drug code (an RxNorm SCD) rather than the ingredient, so the
    ingredient or brand name in the text or display is the fallback.
    """
    for drug_id, drug in rules.drugs.items():
        if drug.rxnorm in order.rxnorm_codes:
            return drug_id
    text = " ".join(order.names).lower()
    for drug_id, drug in rules.drugs.items():
        if any(re.search(rf"\b{re.escape(name.lower())}\b", text) for name in drug.names):
            return drug_id
    return None


def judge_orders(
    orders: Iterable[DraftMedication],
    assessment: Assessment,
    rules: Rules,
    now: datetime,
    chart: ChartContext = EMPTY_CHART,
    indication: Callable[[DraftMedication], frozenset[str] | None] = lambda order: None,
    weight: LabValue | None = None,
    weight_unusable: str | None = None,
) -> list[OrderFinding]:
    """`now`: the time of evaluation (what "given recently" counts from); `indication`: the
    settings an order's stated indication names (None: none stated); `weight`: the newest
    current body weight (kg), for doses ordered per kg and limits by weight;
    `weight_unusable`: why a body weight that was charted could not be read, if one was."""
    setting = assessment.setting.setting if assessment.setting else "unknown"
    bound = weight if weight is not None and weight.comparator is not None else None
    weight = dosing_weight(weight)
    findings: list[OrderFinding] = []
    identified = [(order, identify_drug(order, rules)) for order in orders]
    ordered = [drug_id for _, drug_id in identified if drug_id is not None]
    for order, drug_id in identified:
        if drug_id is None or drug_id in rules.never_flag.drugs:
            continue
        order = weighed(order, weight)
        drug = rules.drugs[drug_id]
        base = {"order": order.reference, "drug": drug_id, "drug_class": drug.class_}
        steroid_mg = _prednisone_mg(order, drug)
        avoid = [rule for rule in rules.settings[setting].avoid if _about(rule, drug_id, drug)]
        fired = None
        unstated = None
        for rule in avoid:
            if not all_hold(rules.when(rule.when), assessment.facts):
                continue
            given_for = indication(order) if rule.indication is not None else None
            if given_for is not None and rule.indication not in given_for:
                continue  # given for another indication: not judged by this rule
            # A warning applies while the patient may be old enough: a birth year alone counts
            # by the oldest age it allows.
            age = chart.oldest_age[0] if chart.oldest_age else chart.age_years
            if rule.min_years is not None and age is not None and age < rule.min_years:
                continue  # a recorded child: the rule's evidence is in adults
            # The dose before a missing indication: an order below the rule's dose meets no
            # caution either.
            if rule.min_prednisone_mg is not None:
                # A day's dose read only as "at least" decides when it is above the rule's dose.
                unknown = steroid_mg is None or (
                    order.daily_is_floor and steroid_mg <= rule.min_prednisone_mg
                )
                if unknown and rule.outcome == "caution":
                    continue  # a caution is about a high dose: an unreadable one says nothing
                if unknown or steroid_mg is None:
                    findings.append(
                        OrderFinding(
                            kind="dose-unknown",
                            **base,
                            rule=rule.id,
                            source=rule.source,
                            reason=order.dose_problem or "the dose could not be read",
                        )
                    )
                    continue
                if steroid_mg <= rule.min_prednisone_mg:
                    continue
            if rule.indication is not None and given_for is None:
                unstated = unstated or rule
                continue
            fired = rule
            break
        # A dose rule that judged a dose per kg says which weight made it mg.
        by_weight = _by_weight(order, weight) if steroid_mg is not None else ""
        if fired is not None:
            findings.append(
                OrderFinding(
                    kind="mismatch" if fired.outcome == "mismatch" else "setting-caution",
                    **base,
                    recommend=fired.instead,
                    rule=fired.id,
                    source=fired.source,
                    reason=fired.reason + _support_read(fired, rules, chart),
                    daily_dose_prednisone_mg=steroid_mg,
                    detail=by_weight if fired.min_prednisone_mg is not None else "",
                )
            )
            if fired.outcome == "mismatch":
                continue  # the order is to be removed: its label checks would only add noise
        elif unstated is not None:
            findings.append(
                OrderFinding(
                    kind="indication-unstated",
                    **base,
                    rule=unstated.id,
                    source=unstated.source,
                    reason=(unstated.unstated or "") + _support_read(unstated, rules, chart),
                    daily_dose_prednisone_mg=steroid_mg,
                    detail=by_weight if unstated.min_prednisone_mg is not None else "",
                )
            )
        # A caution leaves the order standing, so its label checks still run.
        # Each check its own finding (and card, with its own source): none hides another.
        found: list[OrderFinding] = []
        checks = safety_findings(rules, drug_id, setting, assessment.facts)
        cautions = [check for check in checks if check.outcome != "note"]
        notes = [check for check in checks if check.outcome == "note"]
        texts = [caution.text for caution in cautions]
        if chart.allergic_to(drug_id, drug.class_):
            texts.insert(0, "an allergy or intolerance to it is recorded")
        if texts:
            found.append(
                OrderFinding(kind="caution", **base, reason="; ".join(texts), **_cited_by(cautions))
            )
        found += _dose_limit_findings(
            order, drug_id, setting, rules, weight, bound, weight_unusable
        )
        pair = _alternative_in_the_way(drug_id, setting, ordered, chart, rules, now)
        if pair is not None:
            other, source, text = pair
            found.append(
                OrderFinding(
                    kind="alternative", **base, source=source, reason=text, alternative=other
                )
            )
        cautioned = fired is not None or unstated is not None
        if not found and not cautioned and _needs_cytokines(assessment, drug, rules, setting):
            found.append(OrderFinding(kind="needs-cytokines", **base))
        if notes:
            found.append(
                OrderFinding(
                    kind="label-note",
                    **base,
                    reason="; ".join(note.text for note in notes),
                    **_cited_by(notes),
                )
            )
        findings += found
    return findings


def _cited_by(checks: list[LabelFinding]) -> dict[str, Any]:
    """The `source` and `cites` of a finding made of label checks: each check's source once."""
    sources = list(dict.fromkeys(check.source for check in checks))
    return {"source": sources[0], "cites": tuple(sources[1:])} if sources else {}


def dosing_weight(weight: LabValue | None) -> LabValue | None:
    """The body weight to dose by: a bound (">150 kg") is none."""
    return weight if weight is not None and weight.comparator is None else None


def _dose_limit_findings(
    order: DraftMedication,
    drug_id: str,
    setting: str,
    rules: Rules,
    weight: LabValue | None,
    bound: LabValue | None = None,
    weight_unusable: str | None = None,
) -> list[OrderFinding]:
    """A finding for each dose limit of the setting the order's one dose is above; when it is
    ordered per kg with no weight to turn it into mg, or its dose cannot be read, one that says
    the limits went unchecked. `bound`: the newest weight when it is charted only as a bound
    (">150 kg"): a lower bound makes a dose per kg at least so many mg."""
    limits = [
        limit
        for limit in rules.dose_limits
        if drug_id in limit.drugs and (not limit.settings or setting in limit.settings)
    ]
    base = {"order": order.reference, "drug": drug_id, "drug_class": rules.drugs[drug_id].class_}
    found = [
        OrderFinding(
            kind="dose-limit",
            **base,
            rule=limit.id,
            source=limit.source,
            reason=above.reason,
            detail=above.detail,
            cites=above.cites,
        )
        for limit in limits
        if (above := dose_above(limit, order, weight)) is not None
    ]
    per_kg = _per_kg_ordered(order)
    if not found and bound is not None and bound.comparator in (">", ">="):
        found = _above_at_least(order, limits, bound, base)
    if not found and order.daily_mg_per_kg is not None and order.dose_mg_per_kg is None:
        # A day's dose per kg whose frequency cannot be read: one dose is at most the day's.
        whole_day = replace(
            order, dose_mg_per_kg=order.daily_mg_per_kg, daily_mg_per_kg=None, doses_a_day=1.0
        )
        over = [limit for limit in limits if dose_above(limit, whole_day, weight) is not None]
        if over:
            return [
                OrderFinding(
                    kind="dose-unknown",
                    **base,
                    rule=over[0].id,
                    source=over[0].source,
                    reason=f"{per_kg} ordered, and the frequency cannot be read: the day's dose "
                    f"given at once would be {over[0].finding}",
                )
            ]
    unchecked = [limit for limit in limits if _needs_weight(limit)]
    if unchecked and not found and per_kg is not None and weight is None:
        found.append(
            OrderFinding(
                kind="weight-unknown",
                **base,
                rule=unchecked[0].id,
                source=unchecked[0].source,
                reason=f"{per_kg} ordered",
                detail=f"the newest body weight is charted only as {bound.comparator}"
                f"{number(bound.value)} kg, too little to turn it into mg"
                if bound is not None
                else f"a body weight charted could not be used ({weight_unusable})"
                if weight_unusable
                else "",
            )
        )
    unread = (order.dose_mg is None and per_kg is None) or order.dose_is_floor
    if limits and not found and order.dose_sent and unread:
        # Passing a dose nobody could read would look like a dose within the limits (a draft
        # with no dose yet has nothing to check).
        found.append(
            OrderFinding(
                kind="dose-unknown",
                **base,
                rule=limits[0].id,
                source=limits[0].source,
                reason=order.dose_problem or "the dose could not be read",
            )
        )
    return found


def _above_at_least(
    order: DraftMedication, limits: list[DoseLimitSpec], bound: LabValue, base: dict[str, Any]
) -> list[OrderFinding]:
    """A dose per kg for a weight charted only as a lower bound: above a maximum in mg when the
    bound itself gives more (8 mg/kg for ">150 kg" is at least 1,200 mg). Limits by weight
    stay unchecked: they grow with the weight."""
    if order.dose_mg_per_kg is None:
        return []
    # The cap, when even the bound's dose is above it.
    least_mg, capped = _at_most(order, order.dose_mg_per_kg * bound.value)
    charted = f"{bound.comparator}{number(bound.value)} kg"
    dose = f"{number(least_mg)} mg, capped" if capped else f"at least {number(least_mg)} mg"
    cap = replace(order, capped=capped)
    return [
        OrderFinding(
            kind="dose-limit",
            **base,
            rule=limit.id,
            source=limit.source,
            reason=f"{_per_kg_dose(order)} ordered for a weight charted as {charted} ({dose}), "
            f"{limit.finding}",
            detail=f"The newest body weight is charted only as {charted} (charted "
            f"{bound.effective:%Y-%m-%d %H:%M} UTC); at {number(bound.value)} kg the dose is "
            f"already {number(order.dose_mg_per_kg * bound.value)} mg.{_cap_text(cap)}",
        )
        for limit in limits
        if limit.max_mg is not None and least_mg > limit.max_mg * (1 + _ROUNDING)
    ]


def _needs_weight(limit: DoseLimitSpec) -> bool:
    """Whether a dose per kg can be judged by the limit only with a weight: a maximum in mg, a
    fixed-dose band, or bands of different doses per kg."""
    per_kg = {band.mg_per_kg for band in limit.by_weight}
    return limit.max_mg is not None or None in per_kg or len(per_kg) > 1


def weighed(order: DraftMedication, weight: LabValue | None) -> DraftMedication:
    """An order per kg of body weight as an order in mg, with the charted weight; without a
    current weight its dose stays unread, and says why."""
    ordered = _per_kg_ordered(order)
    if ordered is None:
        return order
    if weight is None:
        problem = f"{ordered} ordered, and no current body weight was found"
        return replace(order, dose_problem=problem)
    per_kg, kg = order.dose_mg_per_kg, weight.value
    mg, capped = _at_most(order, per_kg * kg) if per_kg is not None else (None, False)
    daily: float | None = None
    if order.daily_mg_per_kg is not None:
        daily = order.daily_mg_per_kg * kg
        if order.max_dose_mg is not None and order.doses_a_day is not None:
            daily = min(daily, order.max_dose_mg * order.doses_a_day)
    elif mg is not None and order.doses_a_day is not None:
        daily = mg * order.doses_a_day
    if daily is not None and order.max_daily_mg is not None:
        daily = min(daily, order.max_daily_mg)
    return replace(
        order,
        dose_mg=mg,
        capped=capped,
        daily_dose_mg=daily,
        dose_problem=None if None not in (mg, daily) else "the frequency cannot be read",
    )


def _at_most(order: DraftMedication, mg: float) -> tuple[float, bool]:
    """A dose per kg turned into mg, capped by the order's own maximum a dose, and whether
    the cap lowered it."""
    if order.max_dose_mg is not None and mg > order.max_dose_mg:
        return order.max_dose_mg, True
    return mg, False


def _per_kg_ordered(order: DraftMedication) -> str | None:
    """The dose per kg as ordered ("8 mg/kg", "2 mg/kg a day"), when it is ordered so."""
    if order.daily_mg_per_kg is not None:
        return f"{number(order.daily_mg_per_kg)} mg/kg a day"
    return f"{number(order.dose_mg_per_kg)} mg/kg" if order.dose_mg_per_kg is not None else None


# A dose given in g or mcg is converted to mg: a dose at the limit must not read as above it.
_ROUNDING = 1e-9


@dataclass(frozen=True, slots=True)
class AboveLimit:
    reason: str  # the dose ordered and the limit, short (the card's summary)
    detail: str = ""  # how a limit by weight was worked out
    cites: tuple[str, ...] = ()  # sources of its bands and rounding besides the limit's own


def dose_above(
    limit: DoseLimitSpec, order: DraftMedication, weight: LabValue | None
) -> AboveLimit | None:
    """How one dose of the order lies above the limit, or None: a fixed maximum, or the dose for
    the charted weight; an order in mg/kg without a current weight is judged only against a
    limit whose bands are all per kg."""
    order = weighed(order, weight)
    dose, per_kg = order.dose_mg, order.dose_mg_per_kg
    if limit.max_mg is not None:
        if dose is None or dose <= limit.max_mg * (1 + _ROUNDING):
            return None
        used = f"Turned into mg with {_weight_text(weight)}." if per_kg and weight else ""
        return AboveLimit(f"{_ordered(order)} ordered, {limit.finding}", used + _cap_text(order))
    if order.capped and per_kg is not None:
        # The cap lowers the dose given, not what was ordered: a dose per kg above a limit
        # set per kg says so whatever the cap.
        above = _above_every_band(limit, order, per_kg)
        if above is not None:
            return above
    if weight is not None and dose is not None:
        return _above_for_weight(limit, order, dose, weight)
    if dose is None and per_kg is not None:
        return _above_every_band(limit, order, per_kg)
    return None


def _above_for_weight(
    limit: DoseLimitSpec, order: DraftMedication, dose: float, weight: LabValue
) -> AboveLimit | None:
    kg = weight.value
    holding = [band for band in limit.by_weight if band.holds(kg)]
    if not holding:
        return None
    band = max(holding, key=lambda b: b.dose_mg(kg))
    allowed = band.dose_mg(kg)
    if dose <= allowed * _allowance(limit) * (1 + _ROUNDING):
        return None
    return AboveLimit(
        f"{_ordered(order)} ordered for {number(kg)} kg, {limit.finding}",
        f"{number(dose / kg)} mg/kg a dose for {_weight_text(weight)}; at this weight "
        + _with_rounding(limit, f"the limit is {number(allowed)} mg ({band.text()})", allowed, "mg")
        + _cap_text(order),
        _cited(limit),
    )


def _above_every_band(
    limit: DoseLimitSpec, order: DraftMedication, per_kg: float
) -> AboveLimit | None:
    """Without a weight, a dose per kg is judged only when every band is per kg too."""
    bands = [band.mg_per_kg for band in limit.by_weight]
    ceiling = max((b for b in bands if b is not None), default=None)
    if ceiling is None or None in bands or per_kg <= ceiling * _allowance(limit) * (1 + _ROUNDING):
        return None
    return AboveLimit(
        f"{_per_kg_dose(order)} ordered, {limit.finding}",
        _with_rounding(
            limit,
            f"No current body weight was found; at any weight the limit is at most "
            f"{number(ceiling)} mg/kg",
            ceiling,
            "mg/kg",
        ),
        _cited(limit),
    )


def _by_weight(order: DraftMedication, weight: LabValue | None) -> str:
    """How an order per kg became mg a day ("2 mg/kg a day ordered: 160 mg a day for …")."""
    per_kg = _per_kg_ordered(order)
    if per_kg is None or weight is None or order.daily_dose_mg is None:
        return ""
    return f"{per_kg} ordered: {number(order.daily_dose_mg)} mg a day for {_weight_text(weight)}."


def _weight_text(weight: LabValue) -> str:
    charted = f"{weight.effective:%Y-%m-%d %H:%M} UTC"  # as the other cards give times
    return f"the newest body weight ({number(weight.value)} kg, charted {charted})"


def _ordered(order: DraftMedication) -> str:
    mg = f"{number(order.dose_mg or 0)} mg"
    cap = ", capped" if order.capped else ""
    if order.daily_mg_per_kg is not None:
        return f"{_per_kg_ordered(order)} ({mg} a dose{cap})"
    return f"{number(order.dose_mg_per_kg)} mg/kg ({mg}{cap})" if order.dose_mg_per_kg else mg


def _cap_text(order: DraftMedication) -> str:
    """A sentence on the order's own maximum a dose, when it lowered the dose."""
    if not order.capped:
        return ""
    return (
        f" The order's maxDosePerAdministration caps the dose at "
        f"{number(order.max_dose_mg or 0)} mg."
    )


def _per_kg_dose(order: DraftMedication) -> str:
    """One dose per kg, with the day's dose when that is what was ordered."""
    one = f"{number(order.dose_mg_per_kg or 0)} mg/kg"
    return f"{_per_kg_ordered(order)} ({one} a dose)" if order.daily_mg_per_kg is not None else one


def _allowance(limit: DoseLimitSpec) -> float:
    return 1 + (limit.rounding.fraction if limit.rounding else 0.0)


def _with_rounding(limit: DoseLimitSpec, text: str, value: float, unit: str) -> str:
    if limit.rounding is None:
        return f"{text}."
    share = number(limit.rounding.fraction * 100)
    rounded = f"{number(round(value * _allowance(limit), 6))} {unit}"
    return f"{text}, or {rounded} with the {share} % allowed for rounding to whole vials."


def _cited(limit: DoseLimitSpec) -> tuple[str, ...]:
    """The sources of a limit's bands and rounding besides its own."""
    ids = [band.source for band in limit.by_weight if band.source]
    ids += [limit.rounding.source] if limit.rounding else []
    return tuple(source for source in dict.fromkeys(ids) if source != limit.source)


def _alternative_in_the_way(
    drug_id: str,
    setting: str,
    ordered: Collection[str],
    chart: ChartContext,
    rules: Rules,
    now: datetime,
) -> tuple[str, str, str] | None:
    """(other drug, source, finding) when the setting's advice names an equal alternative of
    the ordered drug that is ordered with it or was given, ordered or taken recently."""
    for spec in rules.settings[setting].advice:
        if spec.drug != drug_id or spec.alternatives is None:
            continue
        pair = spec.alternatives
        short = rules.sources[pair.source].short
        for other in pair.drugs:
            if other in ordered:
                finding = f"{other} is ordered with it, and the two are alternatives, not both"
                return other, pair.source, f"{finding} ({short})"
        given = alternative_given(chart, rules, spec, now)
        if given is not None:
            return given[0], pair.source, given[1]
    return None


def _support_read(rule: AvoidSpec, rules: Rules, chart: ChartContext) -> str:
    """For a rule that reads the respiratory support: what the chart recorded, to show."""
    if not reads_oxygen_support(rules, rule.when):
        return ""
    recorded = chart.oxygen.text() if chart.oxygen else "none charted"
    return f" Respiratory support recorded: {recorded}."


def _about(rule: AvoidSpec, drug_id: str, drug: DrugSpec) -> bool:
    return drug_id in rule.drugs or drug.class_ in rule.classes


def _prednisone_mg(order: DraftMedication, drug: DrugSpec) -> float | None:
    if drug.prednisone_equivalent is None or order.daily_dose_mg is None:
        return None
    return order.daily_dose_mg * drug.prednisone_equivalent


def _needs_cytokines(assessment: Assessment, drug: DrugSpec, rules: Rules, setting: str) -> bool:
    """A cytokine-directed drug ordered with no recent cytokine result, as information only:
    only where the setting asks for the panel, the diagnostic bar is met, and the drug is not a
    standard of care in a common setting."""
    return (
        rules.settings[setting].multiplex
        and assessment.diagnostic_bar is True
        and bool(assessment.missing_groups)
        and drug.class_ not in rules.standard_of_care.classes
        and drug.class_ != "cytotoxic"
    )
