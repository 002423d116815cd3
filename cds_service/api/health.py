"""Liveness (/healthz: the process is up and serving) and readiness (/readyz)."""

from __future__ import annotations

from flask import Blueprint

from cds_service.api.runtime import current_runtime
from cds_service.observability.readiness import readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, object], int]:
    """200 when the rules are loaded and the audit store answers; else 503 naming what is not."""
    runtime = current_runtime()
    ready, checks = readiness(runtime, require_store=runtime.ready_requires_store)
    body: dict[str, object] = {
        "status": "ready" if ready else "not ready",
        "checks": {c.name: {"ready": c.ready, "detail": c.detail} for c in checks},
        "not_ready": [c.name for c in checks if not c.ready],
    }
    return body, 200 if ready else 503
