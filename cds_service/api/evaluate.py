"""POST /evaluate: assess a patient Bundle outside a hook call (integration engines, batch).

The body is a FHIR Bundle of the patient's resources (any Bundle type); `?at=` sets the time of
evaluation (ISO 8601, default now). The answer holds the assessment and the patient-view cards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, request

from cds_service.api.http import json_body
from cds_service.errors import ApiError
from cds_service.pipeline import BundleError, evaluate_bundle, evaluation_report
from cds_service.runtime import current_runtime

bp = Blueprint("evaluate", __name__)


@bp.post("/evaluate")
def evaluate() -> dict[str, Any]:
    at = request.args.get("at")
    as_of = None
    if at is not None:
        try:
            as_of = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(
                400, f"'at' must be an ISO 8601 date-time (got {at!r}).", field="at"
            ) from None
        if as_of.tzinfo is None:
            raise ApiError(
                400, "'at' must include a time zone, e.g. 2026-11-20T12:00:00Z.", field="at"
            )
    try:
        outcome, _ = evaluate_bundle(current_runtime(), json_body(), as_of)
    except BundleError as exc:
        raise ApiError(400, f"Cannot evaluate: {exc}.") from None
    return evaluation_report(outcome)
