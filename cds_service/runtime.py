"""What the service loads once at start-up and shares, read-only, across requests."""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.cards.build import CardBuilder
from cds_service.evidence import Catalog
from cds_service.fhir.gather import FhirAccess
from cds_service.hooks.services import ServiceSpec, observation_search
from cds_service.knowledge import Knowledge
from cds_service.profile.links import ProfileLinks
from cds_service.rules.loader import Rules
from cds_service.store import AuditStore

# Prefetch key -> analytes it asks for. Cytokines and routine labs are separate searches so a
# client that can run one but not the other still sends what it has, and so the many routine
# results (temperatures every few hours) do not push cytokine results off the first page.
PREFETCH_ANALYTES = {
    "cytokines": ("il6", "il1b", "il18", "ifng", "cxcl9", "sil2r", "tnfa", "il10", "mhla_dr"),
    "labs": (
        "ferritin", "crp", "pct", "lymphocytes", "neutrophils", "platelets", "hemoglobin",
        "fibrinogen", "triglycerides", "ast", "alt", "ldh", "ddimer", "temperature",
    ),
}  # fmt: skip
PREFETCH_COUNT = {"cytokines": 100, "labs": 200}
# Cytokines often arrive as components of one panel Observation whose own code is the lab's
# panel code, so they are searched with combo-code (code or component code).
PREFETCH_PARAMETER = {"cytokines": "combo-code", "labs": "code"}


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
    # The base URL clients reach the service at (links, JWT audience); None: each request's.
    public_base_url: str | None = None
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


def prefetch_queries(catalog: Catalog) -> dict[str, str]:
    """The Observation prefetch templates, by key, for the codes the catalog knows."""
    return {
        key: observation_search(
            catalog.code_query(*analytes).split(","), PREFETCH_COUNT[key], PREFETCH_PARAMETER[key]
        )
        for key, analytes in PREFETCH_ANALYTES.items()
    }
