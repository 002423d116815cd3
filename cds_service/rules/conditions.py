"""Conditions of the rules file ("crs_grade >= 2", "mals", "not hypoxia"): parsed once, judged
against the facts of one evaluation.

A fact is True/False, a number, or None when it cannot be judged (missing data). A condition on
an unknown fact is unknown, never true: a rule only fires on facts that hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class AtLeast(float):
    """A lower bound (a grade with unknown inputs, "≥ 1"): a comparison it cannot settle is
    unknown, never false ("grade >= 2" is unknown for "≥ 1", "grade <= 1" too)."""

    def __repr__(self) -> str:
        return f"AtLeast({float(self)!r})"


Fact = bool | float | int | None

# Facts the engine computes from the chart and the scores (the markers, criteria sets and
# options of the rules file are facts too).
COMPUTED_FACTS = {
    "crs_grade": "ASTCT CRS grade",
    "fever_days": "how many days the current fever has lasted",
    "iec_day": "days since the CAR-T infusion or bispecific dose",
    "hypoxia": "SpO₂ < 92 % on air, or oxygen given",
    "ventilatory_support": "CPAP, BiPAP or invasive ventilation recorded (false on room air or "
    "simple oxygen; unknown above 6 L/min without a ventilation device)",
    "hlh2004": "HLH-2004 criteria met (5 of 8)",
    "hlh2004_met": "HLH-2004 criteria met (count)",
    "hscore": "HScore points",
    "mas2016": "MAS-2016 classification criteria met",
    "chis": "cHIS criteria met (count)",
    "primary_hlh": "primary (familial or genetic) HLH recorded",
    "hlh_trigger_first": "an HLH that is not primary, coded as a macrophage activation syndrome, "
    "or with a confirmed bacterial infection or tuberculosis and no EBV infection (its trigger is "
    "treated first)",
    "tocilizumab_doses_24h": "tocilizumab doses in the last 24 hours",
    "tocilizumab_doses_total": "tocilizumab doses in total",
    "hours_since_tocilizumab": "hours since the last tocilizumab dose",
    "corticosteroid_given": "a systemic corticosteroid at a MAS treatment dose (high dose) "
    "given recently",
    "corticosteroid_hours": "hours since the first recent corticosteroid dose at that dose",
    "etoposide_given": "etoposide (HLH-94-type therapy) given (an administration)",
    # The doses and days are the options hlh94_min_etoposide_doses and hlh94_response_days.
    "hlh94_refractory": "HLH-94-type therapy given long enough to judge the response (the "
    "etoposide doses and days the rules file sets)",
    "active_infection": "an active infection recorded",
    "other_active_infection": "an active infection recorded besides COVID-19 (sepsis or septic "
    "shock coded without a cause aside: COVID-19 may be its cause)",
    "sepsis_cause_unstated": "sepsis or septic shock recorded without a stated cause",
    "latent_tb_negative": "latent tuberculosis test recorded negative",
}

_CONDITION = re.compile(
    r"^(?P<negate>not\s+)?(?P<fact>[a-z0-9_.-]+)"
    r"(?:\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[a-z0-9_.-]+))?$"
)
_OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True, slots=True)
class Condition:
    text: str  # as written, for people
    fact: str
    negate: bool = False
    op: str | None = None
    value: float | None = None  # a number, or
    value_fact: str | None = None  # another fact (an option: "option.corticosteroid_failure_hours")

    def facts(self) -> tuple[str, ...]:
        return (self.fact, self.value_fact) if self.value_fact else (self.fact,)

    def holds(self, facts: Mapping[str, Fact]) -> bool | None:
        left = facts.get(self.fact)
        if left is None:
            return None
        if self.op is None:
            result = bool(left)
            if isinstance(left, AtLeast) and not result:
                return None  # "≥ 0" may be more
        else:
            right = facts.get(self.value_fact) if self.value_fact else self.value
            if right is None:
                return None
            result = bool(_OPS[self.op](float(left), float(right)))
            if isinstance(left, AtLeast) and not _settled(self.op, result):
                return None
        return not result if self.negate else result


def _settled(op: str, result: bool) -> bool:
    """Whether a comparison on a lower bound is settled whatever the true value above it."""
    if op in (">", ">="):
        return result  # already past: a higher true value stays past
    if op in ("<", "<="):
        return not result  # already not below: a higher true value stays not below
    return False


def parse_condition(text: str) -> Condition:
    """Raises ValueError with a message for people when `text` is not a condition."""
    match = _CONDITION.match(text.strip())
    if match is None:
        raise ValueError(
            f"cannot read condition {text!r} (write e.g. 'mals', 'not hypoxia', 'crs_grade >= 2')"
        )
    value, value_fact = None, None
    raw = match.group("value")
    if raw is not None:
        if raw in ("true", "false"):
            value = 1.0 if raw == "true" else 0.0
        else:
            try:
                value = float(raw)
            except ValueError:
                value_fact = raw
    return Condition(
        text=text.strip(),
        fact=match.group("fact"),
        negate=match.group("negate") is not None,
        op=match.group("op"),
        value=value,
        value_fact=value_fact,
    )


def all_hold(conditions: Iterable[Condition], facts: Mapping[str, Fact]) -> bool | None:
    """True when every condition holds, False when one fails, None when one cannot be judged."""
    unknown = False
    for condition in conditions:
        result = condition.holds(facts)
        if result is False:
            return False
        if result is None:
            unknown = True
    return None if unknown else True
