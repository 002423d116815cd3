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
from dataclasses import dataclass, field
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict

from cds_service.evidence.collect import next_link, outcome_problems
from cds_service.evidence.models import DataProblem, ProblemCode
from cds_service.evidence.revisions import latest_revisions

KeyState = Literal["satisfied", "null", "missing", "error", "incomplete"]
_ERROR_SEVERITIES = frozenset({"error", "fatal"})


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

    def needs_fetch(self) -> tuple[str, ...]:
        """Keys whose data the service may still fetch: missing, error, or only a first page."""
        return tuple(
            k for k, s in self.keys.items() if s.state in ("missing", "error", "incomplete")
        )


@dataclass(slots=True)
class BundlePage:
    """One searchset page: its resources, the next page's URL and what went wrong."""

    resources: list[dict[str, object]] = field(default_factory=list)
    next_url: str | None = None
    problems: list[DataProblem] = field(default_factory=list)
    has_error: bool = False  # an OperationOutcome issue of severity error or fatal


def _has_error(outcome: Mapping[str, object]) -> bool:
    issues = outcome.get("issue")
    return any(
        isinstance(issue, Mapping) and issue.get("severity") in _ERROR_SEVERITIES
        for issue in (issues if isinstance(issues, list) else [])
    )


_NO_RESULTS_CODE = "4101"  # Epic: "Resource request returns no results."


def _no_results(outcome: Mapping[str, object]) -> bool:
    """Epic answers an empty search with a searchset holding one OperationOutcome (search.mode
    outcome, severity warning, a coding with code 4101); only that, with no error, is read as
    an empty result."""
    issues = outcome.get("issue")
    if not isinstance(issues, list) or not issues:
        return False
    for issue in issues:
        if not isinstance(issue, Mapping) or issue.get("severity") not in (
            "warning",
            "information",
        ):
            return False
        details = issue.get("details")
        codings = details.get("coding") if isinstance(details, Mapping) else None
        if not isinstance(codings, list) or not any(
            isinstance(c, Mapping) and c.get("code") == _NO_RESULTS_CODE for c in codings
        ):
            return False
    return True


def read_bundle_page(bundle: Mapping[str, object], reference: str) -> BundlePage:
    """Resources of one Bundle page (prefetch value or a page fetched by the FHIR client).

    OperationOutcome entries (search.mode "outcome" or any entry of that type) become data
    problems; entries without a resource object are reported as malformed.
    """
    page = BundlePage(next_url=next_link(bundle))
    if page.next_url is not None:
        page.problems.append(
            DataProblem(
                code=ProblemCode.INCOMPLETE_BUNDLE,
                reason="only the first page of the search was sent",
                reference=reference,
            )
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        page.problems.append(
            DataProblem(
                code=ProblemCode.MALFORMED, reason="Bundle.entry is not a list", reference=reference
            )
        )
        return page
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            page.problems.append(
                DataProblem(
                    code=ProblemCode.MALFORMED,
                    reason="Bundle entry without a resource",
                    reference=reference,
                )
            )
        elif resource["resourceType"] == "OperationOutcome" and _no_results(resource):
            continue  # Epic's "queried, nothing found": an empty search, not a data problem
        elif resource["resourceType"] == "OperationOutcome":
            page.problems.extend(outcome_problems(resource, reference))
            page.has_error = page.has_error or _has_error(resource)
        else:
            page.resources.append(resource)
    return page


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
    page = read_bundle_page(value, reference)
    state: KeyState = "error" if page.has_error else "incomplete" if page.next_url else "satisfied"
    status = PrefetchKeyStatus(
        key=key, state=state, next_url=page.next_url, problems=tuple(page.problems)
    )
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
    merged = cast(list[dict[str, object]], latest_revisions(resources))
    problems = tuple(p for status in keys.values() for p in status.problems)
    return PrefetchRead(resources=merged, keys=keys, problems=problems)
