"""POST /cds-services/{id}/feedback: what the clinician did with our cards.

Each item is committed to the audit store before the 200 is sent: an acknowledged item is never
lost, and a resent item is stored once. When the store cannot commit, the answer is 503 and the
client may send the same body again.
"""

from __future__ import annotations

import logging

from flask import Blueprint

from cds_service.api.client import calling_client
from cds_service.api.errors import ApiError
from cds_service.api.hooks import service_or_404
from cds_service.api.http import json_body, validate
from cds_service.api.runtime import current_runtime
from cds_service.hooks.feedback import FeedbackRequest
from cds_service.store import StoreUnavailable
from cds_service.store.audit import FeedbackRejected

bp = Blueprint("feedback", __name__)
log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> dict[str, object]:
    service = service_or_404(service_id)
    body = validate(FeedbackRequest, json_body())
    store = current_runtime().store
    unavailable = ApiError(
        503,
        "The feedback could not be stored right now and was not recorded; send it again later.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )
    if store is None:
        raise unavailable
    try:
        result = store.record_feedback(service.id, body.feedback, client=calling_client())
    except StoreUnavailable:
        raise unavailable from None
    except FeedbackRejected as exc:
        raise ApiError(400, str(exc), field=exc.field) from None
    if result.orphans:
        log.info(
            "feedback for %s: %d item(s) name a card this store does not know (kept as orphans)",
            service.id,
            result.orphans,
        )
    return {}
