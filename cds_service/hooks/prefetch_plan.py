"""The prefetch templates, derived from the knowledge: the searches whose results it reads.

Observation searches ask for exactly the analytes the rules, the scores and the dose limits read
(and the codes of oxygen-support Observations the chart reader reads), split so that one search
a client cannot run does not cost the others and so that vital signs, charted many times a day,
do not push lab results or the body weight off the first page. The chart searches bring the
Conditions, Procedures, drugs and allergies the chart-context reader turns into settings and
safety facts. Every template stays in the CDS Hooks 2.0 prefetch subset:
`patient={{context.patientId}}`, token equality, `_sort` and `_count`.
"""

from __future__ import annotations

from collections.abc import Iterable

from cds_service.knowledge import Knowledge
from cds_service.rules.loader import BODY_WEIGHT
from cds_service.rules.scores import score_analytes

PATIENT = "patient={{context.patientId}}"
# Charted many times a day: their own search, so that they do not crowd out the labs.
VITAL_SIGNS = frozenset({"temperature", "spo2", "o2_flow", "fio2", "sbp", "map"})
# Charted once a day or less: its own search, so that the newest weight is not pushed off the
# first page by a day of hourly vital signs.
OBSERVATION_COUNT = {"cytokines": 100, "labs": 200, "vitals": 200, "weight": 5}
# Cytokines often arrive as components of one panel Observation whose own code is the lab's
# panel code, so they are searched with combo-code (code or component code); vital signs too
# (flow and FiO2 are components of a pulse-oximetry Observation in US Core).
OBSERVATION_PARAMETER = {
    "cytokines": "combo-code",
    "labs": "code",
    "vitals": "combo-code",
    "weight": "code",
}
CHART_QUERIES = {
    "conditions": f"Condition?{PATIENT}&_count=200",
    "medicationAdministrations": (
        f"MedicationAdministration?{PATIENT}&_sort=-effective-time&_count=200"
    ),
    "medicationRequests": f"MedicationRequest?{PATIENT}&status=active&_count=100",
    "medicationStatements": f"MedicationStatement?{PATIENT}&_sort=-effective&_count=100",
    "allergies": f"AllergyIntolerance?{PATIENT}&_count=100",
}


def analytes_read(knowledge: Knowledge) -> frozenset[str]:
    """The analytes whose results the rules and the scores judge (and the body weight, when a
    dose limit is by weight)."""
    rules = knowledge.rules
    read = {marker.analyte for marker in rules.markers.values()}
    if any(limit.by_weight for limit in rules.dose_limits):
        read.add(BODY_WEIGHT)
    read |= _cytokine_analytes(knowledge)
    return frozenset(read | score_analytes(knowledge.scores))


def _cytokine_analytes(knowledge: Knowledge) -> set[str]:
    return {analyte for group in knowledge.rules.cytokine_groups for analyte in group.analytes}


def observation_search(codes: Iterable[str], count: int, parameter: str = "code") -> str:
    """A 2.0-subset search for the newest Observations with any of `codes` ("system|code")."""
    return f"Observation?{PATIENT}&{parameter}={','.join(codes)}&_sort=-date&_count={count}"


def _observation_key(analyte: str, cytokines: set[str]) -> str:
    if analyte in cytokines:
        return "cytokines"
    if analyte == BODY_WEIGHT:
        return "weight"
    return "vitals" if analyte in VITAL_SIGNS else "labs"


def histories_cut_short(knowledge: Knowledge, partial_keys: Iterable[str]) -> frozenset[str]:
    """The analytes whose older results may be missing: those searched under a prefetch key
    that was read only in part (a page limit, a first page without the rest)."""
    keys = set(partial_keys)
    if not keys:  # the usual call: every search read in full
        return frozenset()
    cytokines = _cytokine_analytes(knowledge)
    return frozenset(a for a in analytes_read(knowledge) if _observation_key(a, cytokines) in keys)


def prefetch_queries(knowledge: Knowledge) -> dict[str, str]:
    """Prefetch key -> query template, for every search whose data the service reads."""
    cytokines = _cytokine_analytes(knowledge)
    keys: dict[str, list[str]] = {"cytokines": [], "labs": [], "vitals": [], "weight": []}
    for analyte in sorted(analytes_read(knowledge)):
        keys[_observation_key(analyte, cytokines)].append(analyte)
    queries: dict[str, str] = {}
    for key, analytes in keys.items():
        codes = knowledge.catalog.code_query(*analytes).split(",") if analytes else []
        if key == "vitals":  # respiratory support the chart reader reads
            codes += [c for c in knowledge.context.oxygen_codes if c not in codes]
        if codes:
            queries[key] = observation_search(
                codes, OBSERVATION_COUNT[key], OBSERVATION_PARAMETER[key]
            )
    procedures = knowledge.context.procedure_codes
    if procedures and not knowledge.context.procedure_texts:
        queries["procedures"] = (
            f"Procedure?{PATIENT}&code={','.join(procedures)}&_sort=-date&_count=50"
        )
    else:  # a hospital recognises procedures by text: ask for all of them
        queries["procedures"] = f"Procedure?{PATIENT}&_sort=-date&_count=100"
    return queries | CHART_QUERIES
