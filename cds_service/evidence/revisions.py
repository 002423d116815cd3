"""Choosing between revisions of the same resource (same resourceType and id).

The same result can arrive twice: once from two prefetch keys, or as the original and its
amended/corrected version. Version metadata decides when both copies carry it; otherwise the
status that comes later in the Observation lifecycle wins (a correction or retraction always
follows the result it changes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from .models import DataProblem, ProblemCode
from .times import parse_fhir_datetime

# Later lifecycle states rank higher: a retraction (entered-in-error) or cancellation replaces
# whatever it retracts, a correction replaces the final result, a final one the preliminary one.
_STATUS_RANK = {
    "registered": 0,
    "preliminary": 1,
    "final": 2,
    "amended": 3,
    "corrected": 3,
    "cancelled": 4,
    "entered-in-error": 5,
}


def resource_key(resource: Mapping[str, object]) -> tuple[str, str] | None:
    """(resourceType, id), or None when either is missing."""
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if isinstance(rtype, str) and isinstance(rid, str) and rtype and rid:
        return rtype, rid
    return None


def _meta(resource: Mapping[str, object]) -> tuple[datetime | None, int | None]:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return None, None
    updated = parse_fhir_datetime(meta.get("lastUpdated"))
    version = meta.get("versionId")
    return updated, int(version) if isinstance(version, str) and version.isdigit() else None


def _status_rank(resource: Mapping[str, object]) -> int:
    status = resource.get("status")
    return _STATUS_RANK.get(status, -1) if isinstance(status, str) else -1


def is_newer(candidate: Mapping[str, object], current: Mapping[str, object]) -> bool:
    """True when `candidate` should replace `current` (ties keep the current one)."""
    cand_updated, cand_version = _meta(candidate)
    cur_updated, cur_version = _meta(current)
    if cand_updated is not None and cur_updated is not None and cand_updated != cur_updated:
        return cand_updated > cur_updated
    if cand_version is not None and cur_version is not None and cand_version != cur_version:
        return cand_version > cur_version
    return _status_rank(candidate) > _status_rank(current)


def latest_revisions(
    resources: Iterable[Mapping[str, object]], conflicts: list[str] | None = None
) -> list[Mapping[str, object]]:
    """One copy per (resourceType, id), the newest revision, in order of first appearance.

    Resources without an id cannot be matched and are all kept. Two copies that differ with
    nothing to say which is newer keep the first; `conflicts`, when given, gets their
    "Type/id" (once each), so that the choice is reported rather than silent.
    """
    chosen: dict[tuple[str, object], Mapping[str, object]] = {}
    reported: set[tuple[str, object]] = set()
    for index, resource in enumerate(resources):
        key: tuple[str, object] = resource_key(resource) or ("<no id>", index)
        current = chosen.get(key)
        if current is None or is_newer(resource, current):
            chosen[key] = resource
        elif (
            conflicts is not None
            and key not in reported
            and resource != current
            and not is_newer(current, resource)
        ):
            reported.add(key)
            conflicts.append(f"{key[0]}/{key[1]}")
    return list(chosen.values())


def conflict_problem(reference: str) -> DataProblem:
    return DataProblem(
        code=ProblemCode.CONFLICTING_COPIES,
        reason="two different copies were received with nothing to say which is newer: the "
        "first received was used",
        reference=reference,
    )
