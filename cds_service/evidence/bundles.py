"""Reading FHIR JSON leniently: Bundle entries, `next` links, OperationOutcomes, nested fields.

The one walk over Bundles: prefetch values, the FHIR client's search pages, the evidence
collector, draft orders, demo requests and POST /evaluate all read through it. Nothing here
raises on a bad shape: what cannot be read is skipped, or reported as a DataProblem by
`read_bundle`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .models import DataProblem, ProblemCode
from .values import clean_display

_ERROR_SEVERITIES = frozenset({"error", "fatal"})


def as_list(value: object) -> list[Any]:
    """`value` if it is a JSON array, else an empty list (absent, null or a wrong type)."""
    return value if isinstance(value, list) else []


def text_at(value: object, *path: str) -> str | None:
    """The string at `path` inside nested JSON objects (`text_at(r, "subject", "reference")`),
    or None where any step is missing or of another type."""
    for key in path:
        # Parsed JSON objects are dicts; the Mapping ABC check cost ~5 times as much, and this
        # runs for every resource of a call.
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def listed(value: object) -> list[Any]:
    """An array as it is, one object where R4 has an array (real clients send both) as a list of
    it, anything else as an empty list."""
    return value if isinstance(value, list) else [value] if isinstance(value, dict) else []


def resource_entries(bundle: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(entry, resource) of each Bundle.entry holding a resource object, in order: for readers
    that need the entry too (its fullUrl); entries without a resource are skipped."""
    return [
        (entry, entry["resource"])
        for entry in listed(bundle.get("entry"))
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    ]


def entry_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The resource objects of Bundle.entry, in order; entries without one are skipped."""
    return [resource for _, resource in resource_entries(bundle)]


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The URL of the Bundle's `next` link, without surrounding whitespace; None if it has none."""
    for link in as_list(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == "next":
            url = text_at(link, "url")
            return url.strip() or None if url is not None else None
    return None


def outcome_problems(outcome: Mapping[str, Any], reference: str | None) -> list[DataProblem]:
    """One problem per OperationOutcome issue: severity and coded reason, no free text.

    Server diagnostics can echo query parameters (patient ids), so they are not copied.
    """
    found = []
    for issue in as_list(outcome.get("issue")):
        if not isinstance(issue, dict):
            continue
        # Each part is bounded, not the sentence: a long severity word must not cut the code off.
        severity = clean_display(text_at(issue, "severity") or "unknown")
        code = clean_display(text_at(issue, "code") or "unknown")
        reason = f"OperationOutcome issue: severity {severity}, code {code}"
        found.append(
            DataProblem(code=ProblemCode.OPERATION_OUTCOME, reason=reason, reference=reference)
        )
    if not found:
        found.append(
            DataProblem(
                code=ProblemCode.OPERATION_OUTCOME,
                reason="OperationOutcome without issues",
                reference=reference,
            )
        )
    return found


def outcome_is_error(outcome: Mapping[str, Any]) -> bool:
    """True when an issue has severity error or fatal (the data behind it was not delivered)."""
    return any(
        isinstance(issue, dict) and issue.get("severity") in _ERROR_SEVERITIES
        for issue in as_list(outcome.get("issue"))
    )


_NO_RESULTS_CODE = "4101"  # Epic: "Resource request returns no results."


def is_no_results_outcome(outcome: Mapping[str, Any]) -> bool:
    """Epic answers an empty search with a searchset holding one OperationOutcome (search.mode
    outcome, severity warning, a coding with code 4101); only that, with no error, is read as
    an empty result."""
    issues = as_list(outcome.get("issue"))
    if not issues:
        return False
    for issue in issues:
        if not isinstance(issue, dict) or issue.get("severity") not in ("warning", "information"):
            return False
        codings = as_list(
            issue.get("details", {}).get("coding")
            if isinstance(issue.get("details"), dict)
            else None
        )
        if not any(isinstance(c, dict) and c.get("code") == _NO_RESULTS_CODE for c in codings):
            return False
    return True


def unread_pages_problem(reference: str | None) -> DataProblem:
    """A search Bundle with a `next` page that nobody read: its results are only in part."""
    return DataProblem(
        code=ProblemCode.INCOMPLETE_BUNDLE,
        reason="only the first page of the search was sent",
        reference=reference,
    )


@dataclass(slots=True)
class BundleRead:
    """One Bundle's entries: the resources, and what went wrong reading them."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)
    next_url: str | None = None
    has_error: bool = False  # an OperationOutcome entry with an issue of severity error/fatal


def read_bundle(bundle: Mapping[str, Any], reference: str | None = None) -> BundleRead:
    """The resources of one Bundle (any type), in order, and its data problems.

    OperationOutcome entries (search mode "outcome" or not) become data problems, not resources,
    except Epic's "no results" note, which only says the search found nothing;
    an entry without a resource object, or a resource without a resourceType, is reported as
    malformed. A `next` link is returned, not reported: whether it is followed is the caller's.
    `reference` ("prefetch:labs") is put on each problem.
    """
    read = BundleRead(next_url=next_link(bundle))
    entries = bundle.get("entry")
    if entries is None:
        return read
    if not isinstance(entries, list | dict):
        read.problems.append(_malformed("Bundle.entry is not a list", reference))
        return read
    for entry in listed(entries):  # one entry object in place of the array: read as the only
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            read.problems.append(_malformed("Bundle entry without a resource", reference))
        elif not isinstance(resource.get("resourceType"), str):
            read.problems.append(_malformed("resource without a resourceType", reference))
        elif resource["resourceType"] == "OperationOutcome" and is_no_results_outcome(resource):
            continue  # Epic's "queried, nothing found": an empty search, not a data problem
        elif resource["resourceType"] == "OperationOutcome":
            read.problems.extend(outcome_problems(resource, reference))
            read.has_error = read.has_error or outcome_is_error(resource)
        else:
            read.resources.append(resource)
    return read


def _malformed(reason: str, reference: str | None) -> DataProblem:
    return DataProblem(code=ProblemCode.MALFORMED, reason=reason, reference=reference)
