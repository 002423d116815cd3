"""What the service loads once at start-up and shares, read-only, across requests."""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.cards.build import CardBuilder
from cds_service.evidence import Catalog
from cds_service.fhir.gather import FhirAccess
from cds_service.hooks.services import ServiceSpec
from cds_service.knowledge import Knowledge
from cds_service.profile.links import ProfileLinks
from cds_service.rules.loader import Rules
from cds_service.store import AuditStore


@dataclass(frozen=True)
class Runtime:
    """Built by the composition root (cds_service/composition.py), from Settings."""

    services: dict[str, ServiceSpec]
    knowledge: Knowledge
    fhir: FhirAccess  # FHIR server access: allowlist policy and pooled client
    # Audit trail and feedback; None in a runtime built without a store (CLI evaluate).
    store: AuditStore | None = None
    # Signs the cards' profile page links; None when the page is off or unserved.
    profile_links: ProfileLinks | None = None
    # Where the profile page links point: the public base URL, else the address served on;
    # never the request's Host header, which the caller controls.
    link_base: str = "http://127.0.0.1:8080"
    ready_requires_store: bool = True  # GET /readyz fails while the store is unreachable

    @property
    def catalog(self) -> Catalog:
        return self.knowledge.catalog

    @property
    def rules(self) -> Rules:
        return self.knowledge.rules

    @property
    def cards(self) -> CardBuilder:
        return self.knowledge.cards
