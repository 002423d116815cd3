"""POST /evaluate: assess a patient Bundle outside a hook call (integration engines, batch).

The body is a FHIR Bundle of the patient's resources (any Bundle type); `?at=` sets the time of
evaluation (ISO 8601, default now). The answer holds the assessment, the data problems and the
patient-view cards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request

from cds_service.api.errors import ApiError
from cds_service.api.http import json_body
from cds_service.api.runtime import current_runtime
from cds_service.decision import decide, decision_report
from cds_service.evidence.times import evaluation_time_problem
from cds_service.gathering import BundleError, evaluation_context, record_from_bundle

bp = Blueprint("evaluate", __name__)


@bp.post("/evaluate")
def evaluate() -> dict[str, Any]:
    as_of = _as_of(request.args.get("at"))
    try:
        record, patient_id = record_from_bundle(json_body())
    except BundleError as exc:
        raise ApiError(400, f"Cannot evaluate: {exc}.") from None
    context = evaluation_context(patient_id)
    decision = decide(current_runtime().knowledge, record, context, as_of or datetime.now(UTC))
    return decision_report(decision)


def _as_of(at: str | None) -> datetime | None:
    if at is None:
        return None
    try:
        as_of = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        # "+01:00" sent unencoded arrives as " 01:00": a query string reads "+" as a space.
        hint = " (encode '+' in a query string as %2B)" if " " in at.strip() else ""
        raise ApiError(
            400, f"'at' must be an ISO 8601 date-time (got {at!r}){hint}.", field="at"
        ) from None
    if as_of.tzinfo is None:
        raise ApiError(400, "'at' must include a time zone, e.g. 2026-11-20T12:00:00Z.", field="at")
    problem = evaluation_time_problem(as_of)
    if problem is not None:
        raise ApiError(400, f"'at' cannot be used: {problem} (got {at!r}).", field="at")
    return as_of
