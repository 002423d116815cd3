"""What the service loads once at start-up and shares, read-only, across requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import current_app

from cds_service.hooks.services import ServiceSpec
from cds_service.settings import Settings
from cds_service.store import AuditStore

EXTENSION_KEY = "cytokine_cds"


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    services: dict[str, ServiceSpec]
    # Audit trail and feedback (issue 5); None only in a Runtime built without create_app.
    store: AuditStore | None = None


def current_runtime() -> Runtime:
    return cast(Runtime, current_app.extensions[EXTENSION_KEY])
