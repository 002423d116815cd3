"""Finding the Observations to read in whatever the caller hands over.

Input items may be Observations, DiagnosticReports (with `contained` Observations), Bundles of
any type (searchset pages, transaction fixtures; nested Bundles too) and OperationOutcomes. Other
resource types are ignored. Shapes that are not JSON objects become data problems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from .bundles import as_list, outcome_problems, read_bundle, text_at, unread_pages_problem
from .models import DataProblem, ProblemCode
from .revisions import conflict_problem, latest_revisions
from .values import clean_display

_MAX_BUNDLE_DEPTH = 4


class ObservationInput(NamedTuple):  # one per Observation read: cheaper than a dataclass
    resource: Mapping[str, object]
    source: str  # "Observation/<id>" or "DiagnosticReport/<id>#<contained id>"
    fallback_time: object = None  # the grouping DiagnosticReport's effective[x], raw


@dataclass(slots=True)
class _Collected:
    observations: list[Mapping[str, object]] = field(default_factory=list)
    contained: list[ObservationInput] = field(default_factory=list)
    reports: list[Mapping[str, object]] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)


def resource_id(resource: Mapping[str, object]) -> str | None:
    rid = resource.get("id")
    return clean_display(rid) if isinstance(rid, str) and rid.strip() else None


def _add(item: object, into: _Collected, depth: int) -> None:
    if not isinstance(item, dict):
        into.problems.append(
            DataProblem(code=ProblemCode.MALFORMED, reason="input item is not a JSON object")
        )
        return
    rtype = item.get("resourceType")
    if rtype == "Observation":
        into.observations.append(item)
    elif rtype == "DiagnosticReport":
        _add_report(item, into)
    elif rtype == "Bundle":
        _add_bundle(item, into, depth)
    elif rtype == "OperationOutcome":
        into.problems.extend(outcome_problems(item, None))
    elif not isinstance(rtype, str):
        into.problems.append(
            DataProblem(code=ProblemCode.MALFORMED, reason="resource without a resourceType")
        )


def _add_bundle(bundle: Mapping[str, object], into: _Collected, depth: int) -> None:
    if depth >= _MAX_BUNDLE_DEPTH:
        into.problems.append(
            DataProblem(code=ProblemCode.MALFORMED, reason="Bundles nested too deep")
        )
        return
    read = read_bundle(bundle)
    if read.next_url is not None:
        into.problems.append(unread_pages_problem(None))
    into.problems.extend(read.problems)
    for resource in read.resources:
        _add(resource, into, depth + 1)


def _add_report(report: Mapping[str, object], into: _Collected) -> None:
    """Contained Observations are read here; referenced ones are read where they appear."""
    into.reports.append(report)
    rid = resource_id(report) or "(no id)"
    fallback = _report_time(report)
    for inner in as_list(report.get("contained")):
        if isinstance(inner, dict) and inner.get("resourceType") == "Observation":
            cid = resource_id(inner) or "(no id)"
            into.contained.append(
                ObservationInput(inner, f"DiagnosticReport/{rid}#{cid}", fallback)
            )


def _report_time(report: Mapping[str, object]) -> object:
    for key in ("effectiveDateTime", "effectiveInstant", "issued"):
        if report.get(key) is not None:
            return report.get(key)
    period = report.get("effectivePeriod")
    return period.get("end") or period.get("start") if isinstance(period, dict) else None


def _result_ids(report: Mapping[str, object]) -> list[str]:
    """Ids of `Observation/<id>` references in DiagnosticReport.result (not contained ones)."""
    ids: list[str] = []
    for ref in as_list(report.get("result")):
        target = text_at(ref, "reference")
        if target is not None and "Observation/" in target:
            ids.append(clean_display(target.rsplit("Observation/", 1)[1].split("/_history", 1)[0]))
    return ids


def collect_observations(
    items: Iterable[object],
) -> tuple[list[ObservationInput], list[DataProblem]]:
    """The Observations to read (newest revision per id) and the problems met on the way."""
    collected = _Collected()
    for item in items:
        _add(item, collected, depth=0)
    conflicts: list[str] = []
    observations = latest_revisions(collected.observations, conflicts)
    collected.problems.extend(conflict_problem(reference) for reference in conflicts)
    ids = [resource_id(o) for o in observations]
    received = set(ids)
    fallback: dict[str, object] = {}
    for report in collected.reports:
        for oid in _result_ids(report):
            if oid not in received:
                collected.problems.append(
                    DataProblem(
                        code=ProblemCode.UNRESOLVED_RESULT,
                        reason="DiagnosticReport lists a result that was not received",
                        reference=f"Observation/{clean_display(oid)}",
                    )
                )
            fallback.setdefault(oid, _report_time(report))
    inputs = [
        ObservationInput(o, f"Observation/{oid or '(no id)'}", fallback.get(oid or ""))
        for o, oid in zip(observations, ids, strict=True)
    ]
    return inputs + collected.contained, collected.problems
