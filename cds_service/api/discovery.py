"""GET /cds-services: the discovery document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from cds_service.api.runtime import current_runtime

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> dict[str, Any]:
    services = current_runtime().services.values()
    return {"services": [service.describe().to_json() for service in services]}
