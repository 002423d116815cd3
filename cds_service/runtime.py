"""What the service loads once at start-up and shares, read-only, across requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import current_app

from cds_service.cards.build import CardBuilder
from cds_service.cards.resources import PanelCode
from cds_service.cards.templates import default_cards_dir
from cds_service.evidence import Catalog
from cds_service.fhir.gather import FhirAccess
from cds_service.hooks.prefetch_plan import prefetch_queries
from cds_service.hooks.services import ServiceSpec, build_services
from cds_service.knowledge import Knowledge, load_knowledge
from cds_service.profile.links import ProfileLinks
from cds_service.rules.loader import Rules
from cds_service.settings import Settings
from cds_service.store import AuditStore

EXTENSION_KEY = "cytokine_cds"


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    services: dict[str, ServiceSpec]
    knowledge: Knowledge
    fhir: FhirAccess  # FHIR server access: allowlist policy and pooled client
    # Audit trail and feedback; None in a runtime built without a store (CLI evaluate).
    store: AuditStore | None = None
    # Signs the cards' profile page links; None when the page is off or unserved.
    profile_links: ProfileLinks | None = None

    @property
    def catalog(self) -> Catalog:
        return self.knowledge.catalog

    @property
    def rules(self) -> Rules:
        return self.knowledge.rules

    @property
    def cards(self) -> CardBuilder:
        return self.knowledge.cards


def build_runtime(
    settings: Settings,
    store: AuditStore | None = None,
    profile_links: ProfileLinks | None = None,
) -> Runtime:
    panel = PanelCode(
        settings.multiplex_panel_system,
        settings.multiplex_panel_code,
        settings.multiplex_panel_display,
    )
    knowledge = load_knowledge(
        settings.local_codes_file,
        settings.rules_file,
        settings.cards_dir or default_cards_dir(),
        panel,
        settings.context_codes_file,
        tuple(
            (drug, PanelCode(code.system, code.code, code.display or drug))
            for drug, code in sorted(settings.drug_orderables.items())
        ),
    )
    return Runtime(
        settings=settings,
        services=build_services(prefetch_queries(knowledge)),
        knowledge=knowledge,
        fhir=FhirAccess.from_settings(settings),
        store=store,
        profile_links=profile_links,
    )


def current_runtime() -> Runtime:
    return cast(Runtime, current_app.extensions[EXTENSION_KEY])
