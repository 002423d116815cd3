"""What the service loads once at start-up and shares, read-only, across requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import current_app

from cds_service.fhir.gather import FhirAccess
from cds_service.hooks.services import ServiceSpec
from cds_service.settings import Settings

EXTENSION_KEY = "cytokine_cds"


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    services: dict[str, ServiceSpec]
    fhir: FhirAccess  # FHIR server access: allowlist policy and pooled client (issue 3)


def current_runtime() -> Runtime:
    return cast(Runtime, current_app.extensions[EXTENSION_KEY])
