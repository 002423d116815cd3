"""POST /cds-services/{id}/feedback: what the clinician did with our cards."""

from __future__ import annotations

from flask import Blueprint

from cds_service.api.hooks import service_or_404
from cds_service.api.http import json_body, validate
from cds_service.hooks.feedback import FeedbackRequest

bp = Blueprint("feedback", __name__)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> dict[str, object]:
    service_or_404(service_id)
    validate(FeedbackRequest, json_body())
    return {}
