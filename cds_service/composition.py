"""The composition root: the service's parts built from Settings, in one place.

Lower packages (fhir, store, profile, auth, ...) take plain constructor arguments and never see
Settings; `create_app` and the command line call these builders.
"""

from __future__ import annotations

import logging

from cds_service.auth.jwks import JwksCache
from cds_service.auth.setup import build_verifier, check_bind_allowed
from cds_service.auth.verify import ClientVerifier
from cds_service.cards.resources import PanelCode
from cds_service.cards.templates import default_cards_dir
from cds_service.fhir.client import FetchLimits, FhirClient
from cds_service.fhir.gather import FhirAccess
from cds_service.fhir.server_policy import ServerPolicy
from cds_service.hooks.prefetch_plan import prefetch_queries
from cds_service.hooks.services import build_services
from cds_service.knowledge import Knowledge, load_knowledge
from cds_service.profile.links import SECRET_FILE as PROFILE_SECRET_FILE
from cds_service.profile.links import ProfileLinks
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from cds_service.store import AuditStore
from cds_service.store.database import create_store_engine, store_url
from cds_service.store.patient_key import PatientKeyer, load_or_create_secret
from cds_service.store.replay import StoreReplayCache

log = logging.getLogger(__name__)


def knowledge(settings: Settings) -> Knowledge:
    """Catalog, rules and card templates of these settings, validated (ConfigFileError)."""
    panel = PanelCode(
        settings.multiplex_panel_system,
        settings.multiplex_panel_code,
        settings.multiplex_panel_display,
    )
    return load_knowledge(
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


def build_runtime(
    settings: Settings,
    store: AuditStore | None = None,
    profile_links: ProfileLinks | None = None,
) -> Runtime:
    """What the app shares across requests. No store or link signer unless given (the CLI's
    evaluate and demo-request need neither)."""
    loaded = knowledge(settings)
    return Runtime(
        services=build_services(prefetch_queries(loaded)),
        knowledge=loaded,
        fhir=fhir_access(settings),
        store=store,
        profile_links=profile_links,
        link_base=settings.public_base_url or f"http://{settings.host}:{settings.port}",
        ready_requires_store=settings.ready_requires_store,
    )


def fhir_access(settings: Settings) -> FhirAccess:
    """The FHIR server allowlist policy and the pooled client, with their limits."""
    policy = ServerPolicy.from_entries(
        settings.fhir_allowlist,
        allow_loopback=settings.fhir_allow_loopback,
        allow_http=settings.fhir_allow_http,
    )
    limits = FetchLimits(
        request_timeout=settings.fhir_request_timeout_seconds,
        max_pages=settings.fhir_max_pages,
        retries=settings.fhir_retries,
        max_response_bytes=settings.fhir_max_response_bytes,
        ca_bundle=settings.fhir_ca_bundle,
    )
    return FhirAccess(
        policy,
        FhirClient(limits),
        settings.fhir_allow_anonymous,
        settings.fhir_deadline_seconds,
        settings.fhir_merge_code_searches,
    )


def open_audit_store(settings: Settings, *, patient_key: bool = True) -> AuditStore:
    """The audit store (engine and, for serving, the patient-key secret); connects to nothing
    yet. The reporting and maintenance commands never see a patient id: no key for them."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    url = settings.database_url.get_secret_value() if settings.database_url else None
    engine = create_store_engine(store_url(url, settings.data_dir))
    if not patient_key:
        return AuditStore(engine)
    if settings.patient_key_secret is not None:
        secret = settings.patient_key_secret.get_secret_value().encode()
    else:
        secret = load_or_create_secret(settings.data_dir)
    return AuditStore(engine, PatientKeyer(secret))


# Bind addresses meaning "every interface": no browser can open a link on them.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]", ""})  # noqa: S104


def profile_links(settings: Settings) -> ProfileLinks | None:
    """The profile link signer, or None when the page is off, or when no link could be opened:
    without a public base URL links use the bind address, and a wildcard one (0.0.0.0) is no
    address a clinician's browser can open."""
    if not settings.profile_page:
        return None
    if settings.public_base_url is None and settings.host in WILDCARD_HOSTS:
        log.warning(
            "profile page links are off: the service binds to %s, which no browser can open; "
            "set CYTOKINE_CDS_PUBLIC_BASE_URL to the URL clients use to turn them on",
            settings.host or "all addresses",
        )
        return None
    if settings.profile_secret is not None:
        secret = settings.profile_secret.get_secret_value().encode()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = load_or_create_secret(
            settings.data_dir,
            PROFILE_SECRET_FILE,
            setting="CYTOKINE_CDS_PROFILE_SECRET",
            purpose="the profile link signature",
        )
    return ProfileLinks(secret, settings.profile_link_lifetime_seconds)


def client_verifier(settings: Settings, store: AuditStore) -> ClientVerifier | None:
    """The CDS client JWT verifier; None when authentication is off. Raises AuthConfigError.

    Used JWT ids are kept in Redis when it is configured, else in the audit store's database."""
    return build_verifier(
        enabled=settings.auth == "on",
        trusted_clients=settings.trusted_clients,
        algorithms=settings.jwt_algorithms,
        public_base_url=settings.public_base_url,
        jwks=JwksCache(
            timeout=settings.jwks_fetch_timeout_seconds,
            min_ttl=settings.jwks_cache_min_seconds,
            max_ttl=settings.jwks_cache_max_seconds,
            refresh_interval=settings.jwks_refresh_min_interval_seconds,
        ),
        redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
        database_replay=StoreReplayCache(store.engine),
        max_lifetime=settings.jwt_max_lifetime_seconds,
        leeway=settings.jwt_leeway_seconds,
    )


def check_bind(settings: Settings, host: str) -> None:
    """Refuse to serve without authentication on a non-loopback address (AuthConfigError)."""
    check_bind_allowed(
        host,
        auth_on=settings.auth == "on",
        allow_non_loopback=settings.auth_off_allow_non_loopback,
    )
