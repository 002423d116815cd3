"""The rules of each clinical setting: facts -> hyperinflammation state -> advice -> safety.

Pure functions over what the chart, the labs and the scores say. Every threshold and condition
comes from the rules file; this module only knows how to compute each fact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from cds_service.context.models import ChartContext, DrugExposure, SettingFinding
from cds_service.evidence import DataProblem, Evidence
from cds_service.evidence.models import ProblemCode
from cds_service.rules.assessment import (
    AdviceStatus,
    AdviceView,
    MarkerResult,
    Reminder,
    ScoreView,
    StateView,
)
from cds_service.rules.conditions import COMPUTED_FACTS, AtLeast, Condition, Fact, all_hold
from cds_service.rules.loader import Rules
from cds_service.rules.schema import AdviceSpec, CriteriaSetSpec, SafetySpec, StateSpec
from cds_service.rules.scores import ScoreResult

# Data problems that mean "a result was there and could not be used" (not: a code we do not
# know, or a search that was cut short).
_UNUSABLE = {
    ProblemCode.UNIT_NOT_CONVERTIBLE,
    ProblemCode.UNIT_MISSING,
    ProblemCode.UNIT_AMBIGUOUS,
    ProblemCode.NO_VALUE,
    ProblemCode.UNPARSEABLE_VALUE,
    ProblemCode.MALFORMED,
    ProblemCode.NO_EFFECTIVE_TIME,
    ProblemCode.FUTURE_DATED,
    # Reported, and not used: a card must not say that there is no result.
    ProblemCode.IMPLAUSIBLE_VALUE,
    ProblemCode.STATUS_IGNORED,
}
# Score ids (clinical scores module) -> the facts they give.
SCORE_FACTS = {
    "astct": "crs_grade",
    "hlh2004": "hlh2004_met",
    "hscore": "hscore",
    "mas2016": "mas2016",
    "chis": "chis",
}
# Computed facts that read the chart's oxygen support (`_hypoxia`: RECOVERY's "oxygen given");
# the ASTCT score reads it as well, for its respiratory grade.
OXYGEN_SUPPORT_FACTS = frozenset({"hypoxia", "ventilatory_support"})
_HLH2004_NEEDED = 5  # HLH-2004: 5 of the 8 criteria (Henter 2007)


@dataclass(frozen=True)
class SettingResult:
    decisive: tuple[str, ...]  # marker ids the state and advice that applied read
    state: StateView | None
    undecided: tuple[str, ...]
    pending: tuple[str, ...]
    not_applied: tuple[str, ...]  # states whose score excludes the patient's age, and why
    diagnostic_bar: bool | None
    advice: tuple[AdviceView, ...]
    facts: dict[str, Fact]
    notes: tuple[str, ...]
    reminders: tuple[Reminder, ...] = ()


def score_views(results: Iterable[ScoreResult]) -> tuple[ScoreView, ...]:
    """The clinical scores as cards and the profile page show them."""
    return tuple(
        ScoreView(
            id=result.id,
            label=result.label,
            value=result.value,
            text=result.text,
            missing=result.missing,
            source=result.source,
            met=tuple(
                f"{item.label}: {item.value}"
                for item in result.inputs
                if item.met or (item.points is not None and item.points > 0)
            ),
            lower_bound=result.extra.get("lower_bound") is True,
            population=result.ages.population if result.ages else None,
            verify=result.verify,
            min_years=result.ages.min_years if result.ages else None,
            outside=result.ages.outside if result.ages else None,
            fever_days=_number(result.extra.get("fever_days")),
            fever_days_lower_bound=result.extra.get("fever_days_lower_bound") is True,
        )
        for result in results
    )


def _number(value: float | bool | None) -> float | None:
    return None if value is None or isinstance(value, bool) else float(value)


def pick_setting(
    chart: ChartContext, rules: Rules
) -> tuple[SettingFinding | None, tuple[SettingFinding, ...]]:
    """The setting whose rules apply (by the file's precedence) and the others recorded."""
    order = rules.precedence.order
    found = [f for f in chart.settings if f.setting in order]
    if not found:
        return None, ()
    # Within a setting the anchor is an exposure (it has a day) before a diagnosis, then the
    # newest: the current CAR-T infusion or bispecific dose, whatever the chart's order.
    found.sort(
        key=lambda f: (
            order.index(f.setting),
            f.day is None,
            f.when is None,
            -(f.when.timestamp() if f.when else 0.0),
        )
    )
    applied = found[0]
    others: dict[str, SettingFinding] = {}
    for finding in found[1:]:
        if finding.setting != applied.setting:
            others.setdefault(finding.setting, finding)
    return applied, tuple(others.values())


def unusable_problems(evidence: Evidence, analyte: str) -> tuple[DataProblem, ...]:
    return tuple(p for p in evidence.problems if p.analyte == analyte and p.code in _UNUSABLE)


def unusable_results(evidence: Evidence, rules: Rules) -> tuple[str, ...]:
    """Results the rules would read that were reported but could not be used, for people."""
    read = {marker.analyte for marker in rules.markers.values()}
    lines = []
    for problem in evidence.problems:
        if problem.analyte in read and problem.code in _UNUSABLE:
            lines.append(f"{problem.analyte}: {problem.reason}")
    return tuple(dict.fromkeys(lines))


def drug_effects(
    evidence: Evidence, chart: ChartContext, rules: Rules
) -> dict[str, tuple[datetime, str]]:
    """Analyte -> (first time the drug changing its meaning was given, the note)."""
    effects: dict[str, tuple[datetime, str]] = {}
    for effect in rules.drug_effects:
        times = [e.when for e in chart.given(effect.drug) if e.when is not None and _given(e)]
        if times:
            effects[effect.analyte] = (min(times), effect.note)
    return effects


def judge_setting(
    rules: Rules,
    evidence: Evidence,
    chart: ChartContext,
    scores: Sequence[ScoreView],
    judged: Mapping[str, MarkerResult],
    applied: SettingFinding | None,
    setting_id: str,
) -> SettingResult:
    facts = compute_facts(rules, evidence, chart, scores, judged, applied)
    spec = rules.settings[setting_id]
    state: StateView | None = None
    undecided: list[str] = []
    not_applied: list[str] = []
    outside = _outside_ages(scores, chart)
    for candidate in spec.states:
        conditions = rules.when(candidate.when)
        held = all_hold(conditions, facts)
        if _younger_than_state(candidate, chart):
            if held is not False:
                not_applied.append(_state_not_applied(candidate, chart))
            continue
        excluded = [outside[f] for c in conditions for f in c.facts() if f in outside]
        if excluded:
            # A score is valid in the ages it was derived in: outside them the state is not
            # met, nor undecided; it licenses nothing.
            if held is not False:
                not_applied.append(_not_applied(candidate.label, excluded[0], chart))
            continue
        if held:
            state = StateView(
                id=candidate.id,
                label=candidate.label,
                source=candidate.source,
                topic_code=candidate.topic.code,
                topic_display=candidate.topic.display,
                indicator=candidate.indicator,
            )
            break
        if held is None:
            undecided.append(_cannot_judge(candidate.label, conditions, facts, rules, scores))
    bar_conditions = rules.when(rules.diagnostic_bar.when)
    bar = all_hold(bar_conditions, facts)
    diagnostic_bar = True if state is not None else bar
    # The bar is a diagnostic step at every age, but a card must not present a score as valid
    # in a patient younger than those it was derived in (said where the bar asks for the
    # panel; elsewhere the bar is not used).
    bar_outside = [outside[f] for c in bar_conditions for f in c.facts() if f in outside]
    young_bar = (
        (_young_bar(bar_outside[0], chart),)
        if bar and state is None and bar_outside and spec.multiplex
        else ()
    )
    advice = _advice(rules, chart, facts, spec.advice, state, setting_id, evidence.as_of)
    pending: list[str] = []
    # A rule that cannot be judged says nothing of a drug another rule already suggests.
    suggested = {a.drug for a in advice if a.status == "suggest" and a.drug is not None}
    if state is not None:
        for item in spec.advice:
            conditions = rules.when(item.when)
            if item.drug in suggested:
                continue
            if item.state == state.id and all_hold(conditions, facts) is None:
                what = rules.drugs[item.drug].names[0] if item.drug else item.action
                pending.append(_cannot_judge(what or item.id, conditions, facts, rules, scores))
    notes = tuple(
        judged_marker.note
        for judged_marker in judged.values()
        if judged_marker.state == "after-drug" and judged_marker.note
    )
    if state is not None and chart.age_years is None:
        notes += tuple(_age_unchecked_score(rules, spec.states, state.id, scores, chart))
        ages = next(s.ages for s in spec.states if s.id == state.id)
        if ages is not None:
            notes += (
                f"{chart.no_age(start=True)}, so whether the patient is in the population of "
                f"{state.label}, {ages.population}, could not be checked.",
            )
    notes += young_bar
    read: list[str] = []
    if state is not None:
        applied_state = next(s for s in spec.states if s.id == state.id)
        read += applied_state.when
        fired = {item.rule for item in advice}
        read += [text for a in spec.advice if a.id in fired for text in a.when]
    reminders = tuple(
        Reminder.of(avoid)
        for avoid in spec.avoid
        if avoid.remind and all_hold(rules.when(avoid.when), facts) is True
    )
    return SettingResult(
        decisive=markers_read(rules, read),
        state=state,
        undecided=tuple(undecided),
        pending=tuple(dict.fromkeys(pending)),
        not_applied=tuple(dict.fromkeys(not_applied)),
        diagnostic_bar=diagnostic_bar,
        advice=advice,
        facts=facts,
        notes=tuple(dict.fromkeys(notes)),
        reminders=reminders,
    )


def _outside_ages(scores: Sequence[ScoreView], chart: ChartContext) -> dict[str, ScoreView]:
    """Score facts whose score was derived in ages that exclude the patient's recorded age."""
    age = chart.age_years
    return {
        SCORE_FACTS[score.id]: score
        for score in scores
        if score.id in SCORE_FACTS
        and score.min_years is not None
        and age is not None
        and age < score.min_years
    }


def _age_unchecked_score(
    rules: Rules,
    states: Sequence[StateSpec],
    state_id: str,
    scores: Sequence[ScoreView],
    chart: ChartContext,
) -> list[str]:
    """The applied state's age-limited scores, when the patient's age is not recorded."""
    applied = next(s for s in states if s.id == state_id)
    read = facts_read(rules, applied.when)
    return [
        f"{chart.no_age(start=True)}, so whether the patient is in the population of "
        f"{score.label}, {score.population}, could not be checked."
        for score in scores
        if score.min_years is not None and SCORE_FACTS.get(score.id) in read
    ]


def _younger_than_state(state: StateSpec, chart: ChartContext) -> bool:
    ages, age = state.ages, chart.age_years
    return ages is not None and age is not None and age < ages.min_years


def _state_not_applied(state: StateSpec, chart: ChartContext) -> str:
    """ "PROVIDE MALS criterion ... not applied: the patient is 4 years old, and it was derived
    in adults with sepsis (PROVIDE); ..." """
    assert state.ages is not None
    return (
        f"{state.label} not applied: the patient is {chart.age_text()}, and it was derived in "
        f"{state.ages.population}; {state.ages.outside}"
    )


def _not_applied(what: str, score: ScoreView, chart: ChartContext) -> str:
    """ "HScore cut-off ... not applied: the patient is 6 years old, and HScore was derived and
    validated in adults ...; the HLH-2004 criteria ... are the rule applied"."""
    return (
        f"{what} not applied: the patient is {chart.age_text()}, and {score.label} was derived "
        f"and validated in {score.population}; {score.outside}"
    )


def _young_bar(score: ScoreView, chart: ChartContext) -> str:
    return (
        f"{score.label} was derived in {score.population} and the patient is "
        f"{chart.age_text()} ({score.outside}): it is used here only to ask for a cytokine "
        "panel, a diagnostic step, never for a drug"
    )


def _cannot_judge(
    what: str,
    conditions: Sequence[Condition],
    facts: Mapping[str, Fact],
    rules: Rules,
    scores: Sequence[ScoreView],
) -> str:
    """ "tocilizumab cannot be judged (unknown: blood pressure, oxygen support)"."""
    unknown = [
        _unknown_label(rules, fact, facts, scores)
        for c in conditions
        if c.holds(facts) is None
        for fact in c.facts()
        if facts.get(fact) is None or isinstance(facts.get(fact), AtLeast)
    ]
    return f"{what} cannot be judged (unknown: {', '.join(dict.fromkeys(unknown))})"


def _unknown_label(
    rules: Rules, fact: str, facts: Mapping[str, Fact], scores: Sequence[ScoreView]
) -> str:
    """A fact that could not be judged; for a score, the inputs it was missing."""
    score = next((s for s in scores if SCORE_FACTS.get(s.id) == fact), None)
    if score is not None and score.missing:
        return ", ".join(score.missing)
    return _fact_label(rules, fact)


def _fact_label(rules: Rules, fact: str) -> str:
    """A fact as people read it: "ASTCT CRS grade (0-4)", "Ferritin (IEC-HS range)"."""
    if fact in COMPUTED_FACTS:
        return COMPUTED_FACTS[fact]
    if fact in rules.markers:
        return rules.markers[fact].label
    if fact in rules.criteria_sets:
        return rules.criteria_sets[fact].label
    return fact


def markers_read(rules: Rules, texts: Iterable[str]) -> tuple[str, ...]:
    """The markers that conditions read, directly or through a criteria set."""
    found: list[str] = []
    for condition in rules.when(list(texts)):
        for fact in condition.facts():
            if fact in rules.markers:
                found.append(fact)
            criteria = rules.criteria_sets.get(fact)
            if criteria is not None:
                found += [*criteria.all, *criteria.none]
                found += criteria.at_least.of if criteria.at_least else []
    return tuple(dict.fromkeys(found))


def facts_read(rules: Rules, texts: Iterable[str]) -> set[str]:
    """The facts that conditions read."""
    return {fact for condition in rules.when(list(texts)) for fact in condition.facts()}


def reads_oxygen_support(rules: Rules, texts: Iterable[str]) -> bool:
    """Whether conditions read a fact computed from the chart's respiratory support."""
    return bool(facts_read(rules, texts) & OXYGEN_SUPPORT_FACTS)


# --- facts ---------------------------------------------------------------------------------------


def compute_facts(
    rules: Rules,
    evidence: Evidence,
    chart: ChartContext,
    scores: Sequence[ScoreView],
    judged: Mapping[str, MarkerResult],
    applied: SettingFinding | None,
) -> dict[str, Fact]:
    now = evidence.as_of
    facts: dict[str, Fact] = {}
    for marker_id, result in judged.items():
        facts[marker_id] = _marker_fact(result)
    for set_id, criteria in rules.criteria_sets.items():
        facts[set_id] = _criteria_set(criteria, judged)
    for name, option in rules.options.items():
        facts[f"option.{name}"] = option.value
    for score in scores:
        fact = SCORE_FACTS.get(score.id)
        if fact is not None:
            facts[fact] = score.value
    astct = next((s for s in scores if s.id == "astct"), None)
    if astct is not None and astct.value is not None and astct.lower_bound:
        # Blood pressure or oxygen support unknown: a lower bound, so a rule needing a higher
        # grade is unknown, not false (HScore's lower bound is read by its own rules).
        facts["crs_grade"] = AtLeast(astct.value)
    days = astct.fever_days if astct is not None else None
    if days is not None and astct is not None and astct.fever_days_lower_bound:
        days = AtLeast(days)  # older temperatures missing: a longer fever is unknown, not false
    facts["fever_days"] = days
    hlh = next((s for s in scores if s.id == "hlh2004"), None)
    if hlh is not None and hlh.value is not None:
        met = hlh.value
        if met >= _HLH2004_NEEDED:
            facts["hlh2004"] = True
        elif met + len(hlh.missing) < _HLH2004_NEEDED:
            facts["hlh2004"] = False
        else:
            facts["hlh2004"] = None
    facts["iec_day"] = applied.day if applied is not None and applied.setting == "iec" else None
    facts["hypoxia"] = _hypoxia(chart, judged)
    facts["ventilatory_support"] = _ventilatory_support(chart)
    # A molecular diagnosis meets HLH-2004 by itself (Henter 2007): the rules file's own state
    # for it asks for signs of activity too; `hlh2004` is the count of 5 of 8.
    facts["primary_hlh"] = any(f.setting == "hlh" and f.kind == "primary" for f in chart.settings)
    # HLH-94-type etoposide is first-line in primary and EBV-associated HLH; with a MAS coded
    # (whatever else is recorded), or a confirmed bacterial infection (sepsis coded without its
    # cause is none) or tuberculosis and no EBV infection, the trigger comes first.
    mas = any(f.setting == "hlh" and f.kind == "mas" for f in chart.settings)
    confirmed = chart.confirmed_infections
    bacterial = any(
        (i.setting == "sepsis" and i.kind != "cause-unstated") or i.kind == "mycobacterial"
        for i in confirmed
    )
    ebv = any(i.kind == "ebv" for i in confirmed)
    facts["hlh_trigger_first"] = (
        chart.has("hlh") and not facts["primary_hlh"] and (mas or (bacterial and not ebv))
    )
    # The label's CRS limits count within the current exposure (since the newest infusion or
    # bispecific dose): doses for an earlier episode do not count against a new one.
    since = applied.when if applied is not None and applied.day is not None else None
    doses = sorted(
        (
            e.when
            for e in chart.given("tocilizumab", since=since)
            if e.when is not None and _given(e)
        ),
        reverse=True,
    )
    facts["tocilizumab_doses_total"] = len(doses)
    facts["tocilizumab_doses_24h"] = sum(1 for when in doses if now - when <= timedelta(hours=24))
    facts["hours_since_tocilizumab"] = (now - doses[0]).total_seconds() / 3600 if doses else None
    recent = _recent_since(rules, now)
    steroids = [
        e
        for e in chart.drugs
        if _is_corticosteroid(e, rules)
        and e.drug not in rules.never_flag.drugs
        and e.when is not None
        and e.taken_since(recent)
    ]
    # MAS treatment is a high dose: home prednisone 5 mg is no "response to glucocorticoids".
    high = [(e, _high_dose(e, chart, rules, chart.weight_kg)) for e in steroids]
    treated = [e for e, is_high in high if is_high]
    facts["corticosteroid_given"] = (
        True if treated else None if any(h is None for _, h in high) else False
    )
    first = min((e.when for e in treated if e.when is not None), default=None)
    facts["corticosteroid_hours"] = (now - first).total_seconds() / 3600 if first else None
    # Given, not ordered: an order or a dose hours ago is not "after HLH-94-type therapy".
    etoposide = sorted(e.when for e in chart.given("etoposide") if e.when and _given(e))
    facts["etoposide_given"] = bool(etoposide)
    response_days = float(rules.options["hlh94_response_days"].value)
    facts["hlh94_refractory"] = len(etoposide) >= float(
        rules.options["hlh94_min_etoposide_doses"].value
    ) and now - etoposide[0] >= timedelta(days=response_days)
    facts["active_infection"] = bool(chart.active_infections)
    beside_covid = [i for i in chart.active_infections if _infection_setting(i) != "covid19"]
    facts["other_active_infection"] = any(not _cause_unstated(i) for i in beside_covid)
    facts["sepsis_cause_unstated"] = any(_cause_unstated(i) for i in beside_covid)
    facts["latent_tb_negative"] = None if chart.latent_tb is None else not chart.latent_tb
    return facts


def _marker_fact(result: MarkerResult) -> Fact:
    if result.state == "above":
        return True
    if result.state == "below":
        return False
    return None


def _criteria_set(criteria: CriteriaSetSpec, judged: Mapping[str, MarkerResult]) -> Fact:
    """True when every part holds, False when one fails, None when one cannot be judged."""
    parts: list[Fact] = [_marker_fact(judged[m]) for m in criteria.all]
    parts += [_negate(_marker_fact(judged[m])) for m in criteria.none]
    if criteria.at_least is not None:
        states = [_marker_fact(judged[m]) for m in criteria.at_least.of]
        met = sum(1 for s in states if s is True)
        unknown = sum(1 for s in states if s is None)
        needed = criteria.at_least.count
        parts.append(True if met >= needed else (None if met + unknown >= needed else False))
    if any(p is False for p in parts):
        return False
    if any(p is None for p in parts):
        return None
    return True


def _negate(value: Fact) -> Fact:
    return None if value is None else not value


def _hypoxia(chart: ChartContext, judged: Mapping[str, MarkerResult]) -> Fact:
    """RECOVERY's hypoxia: SpO₂ < 92 % on air, or oxygen given. None when the chart cannot say."""
    oxygen = chart.oxygen
    on_oxygen: bool | None = None
    if oxygen is not None:
        if oxygen.level == "room-air":
            on_oxygen = False
        elif oxygen.level != "unknown" or (oxygen.flow_l_min or 0) > 0 or (oxygen.fio2 or 0) > 0.21:
            on_oxygen = True
    if on_oxygen:
        return True
    spo2 = judged.get("spo2-low")
    low = _marker_fact(spo2) if spo2 is not None else None
    if low is True:
        return True
    if low is False and on_oxygen is False:
        return False
    return None


# Simple oxygen: the devices RECOVERY's higher-dose trial counted as "no ventilatory support".
_SIMPLE_OXYGEN = frozenset({"room-air", "low-flow", "mask", "non-rebreather", "venturi"})
# About the most FiO2 a low-flow nasal cannula gives (6 L/min): a project convention.
_CANNULA_FIO2 = 0.40


def _ventilatory_support(chart: ChartContext) -> Fact:
    """Non-invasive or invasive ventilation or ECMO (positive pressure) recorded: True; room air
    or simple oxygen: False. None without a record, when the newest device could not be read or
    the FiO2 is more than a cannula gives, and for "high-flow", which the chart reader also gives
    a plain cannula above the ASTCT low-flow limit (6 L/min): it does not tell high-flow nasal
    oxygen, a ventilatory support in RECOVERY, from simple oxygen."""
    oxygen = chart.oxygen
    if oxygen is None:
        return None
    if oxygen.level == "positive-pressure":
        return True
    if oxygen.device_unread:
        return None  # the newest device could not be read: it may be a ventilatory support
    if oxygen.level in ("room-air", "low-flow") and (oxygen.fio2 or 0) > _CANNULA_FIO2:
        return None  # more oxygen than a cannula gives: another support is likely
    return False if oxygen.level in _SIMPLE_OXYGEN else None


def _given(exposure: DrugExposure) -> bool:
    """An administration that happened (not an order or a plan)."""
    return exposure.source == "administration" and exposure.status not in (
        "not-done",
        "entered-in-error",
        "stopped",
    )


def _is_corticosteroid(exposure: DrugExposure, rules: Rules) -> bool:
    drug = rules.drugs.get(exposure.drug)
    return exposure.drug_class == "corticosteroid" or (
        drug is not None and drug.class_ == "corticosteroid"
    )


def _infection_setting(infection: SettingFinding | str) -> str:
    return infection.setting if isinstance(infection, SettingFinding) else str(infection)


def _cause_unstated(infection: SettingFinding | str) -> bool:
    """Sepsis or septic shock coded without its cause, which may be COVID-19 itself."""
    return isinstance(infection, SettingFinding) and infection.kind == "cause-unstated"


# --- advice and safety ---------------------------------------------------------------------------


def _advice(
    rules: Rules,
    chart: ChartContext,
    facts: Mapping[str, Fact],
    specs: Iterable[AdviceSpec],
    state: StateView | None,
    setting_id: str,
    now: datetime,
) -> tuple[AdviceView, ...]:
    """The advice rules of the state found, in file order; one per drug."""
    if state is None:
        return ()  # no hyperinflammation state: no drug, whatever the labs
    advice: list[AdviceView] = []
    seen: set[str] = set()
    for spec in specs:
        if state.id not in spec.states or not all_hold(rules.when(spec.when), facts):
            continue
        key = spec.drug or spec.id
        if key in seen:
            continue
        seen.add(key)
        if spec.drug is None:
            advice.append(_view(spec, spec.action or "", "advise", ()))
            continue
        drug = rules.drugs[spec.drug]
        name = drug.names[0]
        if chart.allergic_to(spec.drug, drug.class_):
            advice.append(_view(spec, name, "removed", ("an allergy or intolerance is recorded",)))
            continue
        on = _on_drug(chart, rules, spec, now)
        if on is not None and not spec.repeat:
            advice.append(_view(spec, name, "already-given", (on,)))
            continue
        rival = _alternative(chart, rules, spec, advice, now)
        if rival is not None:
            advice.append(_view(spec, name, "alternative", (rival,)))
            continue
        findings = safety_findings(rules, spec.drug, setting_id, facts)
        removed = [f.text for f in findings if f.outcome == "remove"]
        if removed:
            advice.append(_view(spec, name, "removed", tuple(removed)))
            continue
        cautions = tuple(f.text for f in findings if f.outcome == "caution")
        notes = tuple(f.text for f in findings if f.outcome == "note")
        other_steroid = _other_corticosteroid(chart, rules, spec, now)
        if other_steroid is not None and spec.already_given is None:
            # No dose makes another corticosteroid count as this one (grade 3 CRS): the
            # standard stays drafted, and the card says to look at the total dose.
            notes += (other_steroid,)
        elif other_steroid is not None:
            cautions += (other_steroid,)
        notes += _same_class_recorded(chart, rules, spec, now)
        younger = _younger_than_population(spec, chart)
        if younger is not None:
            advice.append(_view(spec, name, "outside-ages", (younger, *cautions), notes=notes))
            continue
        status: AdviceStatus = "caution" if cautions else "suggest"
        advice.append(_view(spec, name, status, cautions, _age_unchecked(spec, chart), notes=notes))
    return tuple(advice)


def _younger_than_population(spec: AdviceSpec, chart: ChartContext) -> str | None:
    """Why a patient recorded as younger than the rule's population gets no draft; None when
    the rule has no age limit, the patient is old enough, or the age is not recorded."""
    ages, age = spec.ages, chart.age_text()
    if ages is None or age is None or (chart.age_years or 0) >= ages.min_years:
        return None
    return (
        f"the rule's population is {ages.population}; the patient is {age}; {ages.outside}; "
        "no order drafted"
    )


def _age_unchecked(spec: AdviceSpec, chart: ChartContext) -> str | None:
    if spec.ages is None or chart.age_years is not None:
        return None
    return (
        f"{chart.no_age(start=True)}, so whether the patient is in the rule's population, "
        f"{spec.ages.population}, could not be checked"
    )


def _view(
    spec: AdviceSpec,
    action: str,
    status: AdviceStatus,
    findings: tuple[str, ...],
    age_unchecked: str | None = None,
    *,
    notes: tuple[str, ...] = (),
) -> AdviceView:
    return AdviceView(
        rule=spec.id,
        drug=spec.drug,
        action=action,
        status=status,
        source=spec.source,
        population=spec.population,
        rationale=spec.rationale,
        findings=findings,
        notes=notes,
        verify=spec.verify,
        age_unchecked=age_unchecked,
    )


# Classes whose drugs block the same receptor, so that one given recently counts as the other
# (tocilizumab on top of sarilumab blocks the IL-6 receptor twice). Not IL-1 blockers (anakinra
# is given for MAS arising on canakinumab) nor JAK inhibitors (ruxolitinib for a myeloproliferative
# neoplasm is no COVID-19 add-on): for those the card names the one recorded.
_SAME_TARGET = {"il6-blockade": "an IL-6 blocker"}
_SAME_CLASS_NOTED = {
    "il1-blockade": "another IL-1 blocker",
    "jak-inhibitor": "another JAK inhibitor",
}


def _same_class_recorded(
    chart: ChartContext, rules: Rules, spec: AdviceSpec, now: datetime
) -> tuple[str, ...]:
    """ "another IL-1 blocker is recorded (canakinumab taken since ...): check it before adding
    anakinra", for a drug of the rule's class the patient is on."""
    drug_id = spec.drug or ""
    drug = rules.drugs.get(drug_id)
    kind = _SAME_CLASS_NOTED.get(drug.class_) if drug is not None else None
    if drug is None or kind is None:
        return ()
    return tuple(
        f"{kind} is recorded ({_recorded(e)}): check it before adding {drug_id}"
        for e in _recent(chart, rules, now)
        if e.drug != drug_id and _class_of(e, rules) == drug.class_
    )[:1]


def _class_of(exposure: DrugExposure, rules: Rules) -> str:
    drug = rules.drugs.get(exposure.drug)
    return drug.class_ if drug is not None else exposure.drug_class


def _on_drug(chart: ChartContext, rules: Rules, spec: AdviceSpec, now: datetime) -> str | None:
    """ "already given 2026-11-30" when the patient is on the drug; for a corticosteroid, also
    on another corticosteroid (not stress-dose hydrocortisone) from the daily dose the rule's
    `already_given` sets. Without one, another corticosteroid is no reason to leave the rule's
    own out (home prednisone 5 mg is no grade 3 CRS treatment): see `_other_corticosteroid`."""
    drug_id = spec.drug or ""
    floor = spec.already_given.min_prednisone_mg if spec.already_given else None
    drug_class = rules.drugs[drug_id].class_ if drug_id in rules.drugs else None
    same_target = _SAME_TARGET.get(drug_class or "")
    for exposure in _recent(chart, rules, now):
        dose = ""
        if exposure.drug != drug_id and same_target and _class_of(exposure, rules) == drug_class:
            # Sarilumab 30 hours ago: tocilizumab on top would block the same receptor twice.
            return f"{_said(exposure)}, {same_target} like {drug_id}"
        if exposure.drug != drug_id:
            if floor is None or not _other_corticosteroid_than(exposure, drug_id, rules):
                continue
            mg = _prednisone_mg_a_day(exposure, chart, rules)
            if mg is None or mg < floor:
                continue
            dose = f" ({_steroid_dose_text(mg, exposure, chart)})"
        return f"{_said(exposure)}{dose}"
    return None


def _other_corticosteroid(
    chart: ChartContext, rules: Rules, spec: AdviceSpec, now: datetime
) -> str | None:
    """Another corticosteroid the patient is on, named so that the total dose is looked at:
    beside the draft for a rule with no `already_given` dose (home prednisone does not replace
    grade 3 CRS treatment), and for a rule with one as a caution, only when its dose cannot be
    read: whether it reaches that dose is unknown (one that reads is judged by `_on_drug`).
    None when there is none."""
    drug_id = spec.drug or ""
    for exposure in _recent(chart, rules, now):
        if not _other_corticosteroid_than(exposure, drug_id, rules):
            continue
        mg = _prednisone_mg_a_day(exposure, chart, rules)
        if spec.already_given is None:
            dose = (
                _steroid_dose_text(mg, exposure, chart) if mg is not None else "dose not readable"
            )
            return (
                f"another corticosteroid is recorded ({_recorded(exposure)}, {dose}): this rule's "
                f"{drug_id} still applies; check the total corticosteroid dose before ordering"
            )
        if mg is None:
            return (
                f"another corticosteroid is recorded ({_recorded(exposure)}, dose not readable): "
                f"whether it reaches this rule's dose could not be checked; check the total "
                f"corticosteroid dose before ordering {drug_id}"
            )
    return None


def _high_dose(
    exposure: DrugExposure, chart: ChartContext, rules: Rules, kg: float | None
) -> bool | None:
    """Whether a corticosteroid's daily dose is a MAS treatment dose (`options`: mg/kg a day
    prednisone-equivalent, or mg a day when no weight is charted); None when it cannot be told."""
    mg = _prednisone_mg_a_day(exposure, chart, rules)
    if mg is None:
        return None
    per_kg = float(rules.options["mas_glucocorticoid_mg_per_kg"].value)
    if kg is not None:
        return mg / kg >= per_kg
    # Without a weight only a dose high at any weight settles it (a child's may be high at
    # less), and in a recorded adult one low at any adult weight.
    if mg >= float(rules.options["mas_glucocorticoid_mg_no_weight"].value):
        return True
    adult_years = float(rules.options["mas_glucocorticoid_adult_years"].value)
    adult = chart.age_years is not None and chart.age_years >= adult_years
    least_kg = float(rules.options["mas_glucocorticoid_adult_kg"].value)
    return False if adult and mg < per_kg * least_kg else None


def _recent_since(rules: Rules, now: datetime) -> datetime:
    """Where "given, ordered or taken recently" starts (`options.drug_recent_days`)."""
    return now - timedelta(days=float(rules.options["drug_recent_days"].value))


def _recent(chart: ChartContext, rules: Rules, now: datetime) -> list[DrugExposure]:
    recent = _recent_since(rules, now)
    return [e for e in chart.drugs if e.taken_since(recent)]


def _other_corticosteroid_than(exposure: DrugExposure, drug_id: str, rules: Rules) -> bool:
    """A corticosteroid other than the rule's (itself a corticosteroid), not one never flagged
    (stress-dose hydrocortisone)."""
    return (
        exposure.drug != drug_id
        and rules.drugs[drug_id].class_ == "corticosteroid"
        and _is_corticosteroid(exposure, rules)
        and exposure.drug not in rules.never_flag.drugs
    )


def _prednisone_mg_a_day(exposure: DrugExposure, chart: ChartContext, rules: Rules) -> float | None:
    """The daily prednisone-equivalent dose of a corticosteroid exposure: an order's or
    statement's stated daily dose, or the doses of that drug given in the 24 hours up to this
    administration. None when the dose cannot be read."""
    drug = rules.drugs.get(exposure.drug)
    factor = drug.prednisone_equivalent if drug is not None else None
    if factor is None:
        return None
    if exposure.source != "administration":
        return exposure.daily_mg * factor if exposure.daily_mg is not None else None
    if exposure.dose_mg is None or exposure.when is None:
        return None
    doses = [e.dose_mg for e in _day_given(exposure, chart)]
    # One dose that cannot be read leaves the day's total unknown: a sum without it would
    # understate it.
    known = [dose for dose in doses if dose is not None]
    return sum(known) * factor if len(known) == len(doses) else None


def _day_given(exposure: DrugExposure, chart: ChartContext) -> list[DrugExposure]:
    """The administrations of the exposure's drug in the 24 hours up to it."""
    if exposure.when is None:
        return [exposure]
    since = exposure.when - timedelta(hours=24)
    return [
        e
        for e in chart.given(exposure.drug)
        if _given(e) and e.when is not None and since < e.when <= exposure.when
    ]


def _steroid_dose_text(mg: float, exposure: DrugExposure, chart: ChartContext) -> str:
    """ "about 88 mg prednisone-equivalent a day", and the weight when a dose was per kg."""
    day = _day_given(exposure, chart) if exposure.source == "administration" else [exposure]
    kg = next((e.by_weight_kg for e in day if e.by_weight_kg is not None), None)
    weighed = f", its dose per kg at the current body weight of {kg:g} kg" if kg else ""
    return f"about {mg:.0f} mg prednisone-equivalent a day{weighed}"


def _alternative(
    chart: ChartContext,
    rules: Rules,
    spec: AdviceSpec,
    advice: Sequence[AdviceView],
    now: datetime,
) -> str | None:
    """Why the drug is not drafted beside an equal alternative: the alternative is drafted on
    this card, or was given, ordered or taken recently. None: no alternative in the way."""
    if spec.alternatives is None:
        return None
    short = rules.sources[spec.alternatives.source].short
    for item in advice:
        if item.drug in spec.alternatives.drugs and item.drafted:
            return f"{item.action} is drafted, and the two are alternatives, not both ({short})"
    given = alternative_given(chart, rules, spec, now)
    return given[1] if given is not None else None


def alternative_given(
    chart: ChartContext, rules: Rules, spec: AdviceSpec, now: datetime
) -> tuple[str, str] | None:
    """(drug, finding) for an equal alternative of the advice's drug given, ordered or taken
    recently; None when there is none."""
    if spec.alternatives is None:
        return None
    short = rules.sources[spec.alternatives.source].short
    recent = _recent_since(rules, now)
    for other in spec.alternatives.drugs:
        for exposure in chart.given(other):
            if exposure.taken_since(recent):
                return other, f"{_said(exposure)}, and the two are alternatives, not both ({short})"
    return None


def _said(exposure: DrugExposure) -> str:
    """ "tocilizumab already given 2026-11-30" """
    return _recorded(exposure, "already ")


_RECORDED = {"administration": "given", "order": "ordered", "statement": "taken"}
# The same, for one still going on (an active order, a statement still taken, a running infusion).
_ONGOING = {
    "administration": "given{when}, still running",
    "order": "ordered{when}, still active",
    "statement": "taken since{when}",
}


def _recorded(exposure: DrugExposure, already: str = "") -> str:
    """ "prednisone taken 2026-11-28", "dexamethasone ordered 2026-11-20, still active" """
    when = f" {exposure.when:%Y-%m-%d}" if exposure.when else ""
    if exposure.ongoing:
        return f"{exposure.drug} {already}{_ONGOING[exposure.source].format(when=when)}"
    return f"{exposure.drug} {already}{_RECORDED[exposure.source]}{when}"


class LabelFinding(NamedTuple):
    text: str  # the finding, with its source's short name
    outcome: str  # the check's outcome: caution, remove or note
    source: str


def safety_findings(
    rules: Rules, drug_id: str, setting_id: str, facts: Mapping[str, Fact]
) -> list[LabelFinding]:
    """Every label check that fails for `drug_id` in this setting."""
    failed: list[LabelFinding] = []
    for check in rules.safety:
        if not _applies(check, drug_id, setting_id):
            continue
        held = all_hold(rules.when(check.when), facts)
        if held or (held is None and check.unknown == "caution"):
            short = rules.sources[check.source].short
            failed.append(LabelFinding(f"{check.finding} ({short})", check.outcome, check.source))
    return failed


def _applies(check: SafetySpec, drug_id: str, setting_id: str) -> bool:
    return drug_id in check.drugs and (not check.settings or setting_id in check.settings)
