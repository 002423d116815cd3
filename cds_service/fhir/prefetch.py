"""Reading CDS Hooks prefetch values (spec 2.0, "Prefetch Template"; checklist section 1.6).

Each expected key ends in one state:
- "satisfied": a resource or a searchset Bundle (an empty one too: queried, nothing found);
- "null": the client queried and found nothing (do not query again);
- "missing": the key was not sent (the client chose not to, or its query failed);
- "error": an OperationOutcome, or a Bundle carrying one with severity error/fatal;
- "incomplete": a searchset Bundle with a `next` link (only the first page was sent).
Resources from all keys are merged, keeping the newest revision of each resourceType/id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict

from cds_service.evidence.bundles import outcome_problems, read_bundle, unread_pages_problem
from cds_service.evidence.models import DataProblem, ProblemCode
from cds_service.evidence.revisions import conflict_problem, latest_revisions

KeyState = Literal["satisfied", "null", "missing", "error", "incomplete"]


class PrefetchKeyStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    state: KeyState
    next_url: str | None = None  # for "incomplete": the page to fetch next
    problems: tuple[DataProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class PrefetchRead:
    """A dataclass, not a pydantic model: the resources are handed on without copying."""

    resources: list[dict[str, object]]
    keys: dict[str, PrefetchKeyStatus]
    problems: tuple[DataProblem, ...]


def _read_key(key: str, value: object) -> tuple[PrefetchKeyStatus, list[dict[str, object]]]:
    reference = f"prefetch:{key}"
    if value is None:
        return PrefetchKeyStatus(key=key, state="null"), []
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        problem = DataProblem(
            code=ProblemCode.MALFORMED,
            reason="prefetch value is not a FHIR resource",
            reference=reference,
        )
        return PrefetchKeyStatus(key=key, state="error", problems=(problem,)), []
    if value["resourceType"] == "OperationOutcome":
        problems = tuple(outcome_problems(value, reference))
        return PrefetchKeyStatus(key=key, state="error", problems=problems), []
    if value["resourceType"] != "Bundle":
        return PrefetchKeyStatus(key=key, state="satisfied"), [value]
    page = read_bundle(value, reference)
    problems = tuple(page.problems)
    if page.next_url is not None:
        problems = (unread_pages_problem(reference), *problems)
    # An entry that is no resource: what it held is unknown, so the key is not "read".
    unread = any(p.code == ProblemCode.MALFORMED for p in page.problems)
    state: KeyState = (
        "error" if page.has_error or unread else "incomplete" if page.next_url else "satisfied"
    )
    status = PrefetchKeyStatus(key=key, state=state, next_url=page.next_url, problems=problems)
    return status, page.resources


def read_prefetch(
    prefetch: Mapping[str, object] | None, expected_keys: Iterable[str]
) -> PrefetchRead:
    """Read the prefetch values of the keys the service asked for; never raises on bad data."""
    sent: Mapping[str, object] = prefetch if isinstance(prefetch, Mapping) else {}
    keys: dict[str, PrefetchKeyStatus] = {}
    resources: list[dict[str, object]] = []
    for key in dict.fromkeys(expected_keys):
        if key not in sent:
            keys[key] = PrefetchKeyStatus(key=key, state="missing")
            continue
        keys[key], found = _read_key(key, sent[key])
        resources.extend(found)
    conflicts: list[str] = []
    merged = cast(list[dict[str, object]], latest_revisions(resources, conflicts))
    problems = tuple(p for status in keys.values() for p in status.problems)
    problems += tuple(conflict_problem(reference) for reference in conflicts)
    return PrefetchRead(resources=merged, keys=keys, problems=problems)
