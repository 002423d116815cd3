"""Service settings: one object, read once from CYTOKINE_CDS_* environment variables.

No other module reads the environment; create_app() builds a Settings and passes it down.
Every field here is documented in the README's configuration table.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from cds_service.auth.algorithms import ASYMMETRIC_ALGORITHMS, JwtAlgorithm
from cds_service.urls import parse_base_url

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _split_csv(value: Any) -> Any:
    """Allow list settings as comma-separated environment values ("a,b") as well as lists."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class OrderableCode(BaseModel):
    """A hospital's orderable (preference-list item, order-set item, formulary code) for a drug."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str | None = Field(None, min_length=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CYTOKINE_CDS_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address `cytokine-cds serve` binds to.")
    port: int = Field(8080, ge=1, le=65535, description="Port `cytokine-cds serve` binds to.")
    public_base_url: str | None = Field(
        None,
        description="Base URL clients use to reach the service (scheme://host[:port][/prefix]), "
        "for links and the JWT audience behind a proxy. Default: taken from each request.",
    )
    cors_origins: CsvList = Field(
        default_factory=lambda: ["*"],
        description="Origins allowed by CORS, comma-separated; `*` allows any origin "
        "(CDS clients do not send cookies).",
    )
    max_request_bytes: int = Field(
        # The prefetch templates ask for up to ~1,300 resources; at the 2-3 KB an EHR's
        # resource takes with its narrative, a long stay's full prefetch is 3-4 MB, and a 413
        # would leave the sickest patients without cards.
        8 * 1024 * 1024,
        ge=1024,
        description="Largest accepted request body; larger answers 413.",
    )
    log_level: str = Field("INFO", description="Python log level.")
    workers: int = Field(
        # Two per core, so one worker's wait on a FHIR server or the database
        # leaves the core to another (measured: bench/http_load.py, README).
        default_factory=lambda: 2 * (os.cpu_count() or 1),
        ge=1,
        description="gunicorn worker processes. Default: two per CPU core seen by the process "
        "(in a container, set it from the CPU limit).",
    )
    threads: int = Field(
        4, ge=1, description="Threads per worker (gthread), so FHIR calls do not block a core."
    )
    worker_timeout: int = Field(
        30, ge=1, description="Seconds before gunicorn restarts a worker that stopped answering."
    )
    graceful_timeout: int = Field(
        20, ge=1, description="Seconds in-flight requests get to finish on shutdown (SIGTERM)."
    )
    keepalive: int = Field(5, ge=0, description="Seconds an idle keep-alive connection is kept.")

    rules_file: Path | None = Field(
        None,
        description="A hospital's own rules file (YAML, same format as the shipped "
        "cds_service/rules/rules.yaml). Validated at start-up.",
    )
    local_codes_file: Path | None = Field(
        None,
        description="A hospital's own lab codes (any system) for catalog analytes, and unit "
        "spellings (YAML). Validated at start-up.",
    )
    context_codes_file: Path | None = Field(
        None,
        description="A hospital's own codes and names for conditions, procedures, drugs and "
        "oxygen devices in the chart (YAML, same format as cds_service/context/catalog.yaml). "
        "Validated at start-up.",
    )
    cards_dir: Path | None = Field(
        None,
        description="Folder of card templates. Default: the `cards/` folder shipped with the "
        "service.",
    )
    multiplex_panel_system: str = Field(
        "https://cytokine-cds.github.io/fhir/CodeSystem/lab",
        description="Code system of the cytokine panel the multiplex card orders.",
    )
    multiplex_panel_code: str = Field(
        "cytokine-panel", description="Orderable code of the hospital's cytokine multiplex panel."
    )
    multiplex_panel_display: str = Field(
        "Cytokine multiplex panel (IL-1β, IL-6, IL-10, IL-18, IFN-γ, TNF-α, sIL-2R, CXCL9)",
        description="Display name of that panel, shown on the card and in the order.",
    )

    drug_orderables: dict[str, OrderableCode] = Field(
        default_factory=dict,
        description="The hospital's orderable for each drug a card suggests, by drug id of the "
        'rules file, as JSON: {"anakinra": {"system": '
        '"urn:com.epic.cdshooks.action.code.system.preference-list-item", "code": "12345", '
        '"display": "ANAKINRA 100 MG/0.67 ML SC SYRG"}}. Sent beside the RxNorm coding, so the '
        "EHR can pick its own orderable (Epic ignores the order details sent).",
    )

    auth: Literal["on", "off"] = Field(
        "on",
        description="`on`: every /cds-services call must carry a CDS Hooks client JWT signed "
        "by a trusted client. `off` (demo on loopback only): no authentication; logs a warning.",
    )
    auth_off_allow_non_loopback: bool = Field(
        False,
        description="With CYTOKINE_CDS_AUTH=off, also allow `serve` to bind a non-loopback "
        "address. Anyone who reaches the port can then call the service.",
    )
    trusted_clients: Path | None = Field(
        None,
        description="JSON file of trusted CDS clients: per issuer (`iss`), allowed `jku` "
        "URLs and/or a static JWKS, optional allowed tenants. Required when auth is on.",
    )
    jwt_algorithms: Annotated[list[JwtAlgorithm], NoDecode] = Field(
        default_factory=lambda: list(ASYMMETRIC_ALGORITHMS),
        min_length=1,
        description="JWS algorithms accepted, comma-separated (asymmetric only).",
    )
    jwt_max_lifetime_seconds: int = Field(
        3600,
        ge=1,
        le=86400,
        description="Longest accepted JWT lifetime (`exp - iat`). Clients commonly use 300.",
    )
    jwt_leeway_seconds: int = Field(
        60, ge=0, le=600, description="Clock skew tolerated on `exp` and `iat`, in seconds."
    )
    redis_url: SecretStr | None = Field(
        None,
        description="Redis URL (redis://host:port/db) for the JWT replay (`jti`) cache shared "
        "by all workers and replicas. Default: a cache per worker process.",
    )
    jwks_fetch_timeout_seconds: float = Field(
        2.0, gt=0, le=30, description="Connect and read timeout when fetching a `jku` JWKS."
    )
    jwks_cache_min_seconds: int = Field(
        300,
        ge=0,
        description="Shortest time a fetched JWKS is kept, whatever its Cache-Control says "
        "(also used when it sends none).",
    )
    jwks_cache_max_seconds: int = Field(
        86400, ge=1, description="Longest time a fetched JWKS is kept before it is fetched again."
    )
    jwks_refresh_min_interval_seconds: int = Field(
        60,
        ge=0,
        description="Least time between two fetches of one JWKS URL: limits refreshes on an "
        "unknown `kid` and retries after a failed fetch.",
    )

    _split_algorithms = field_validator("jwt_algorithms", mode="before")(_split_csv)

    @field_validator("auth", mode="before")
    @classmethod
    def _auth_lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return level

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        """Refused at start-up, not at the first write; never echoed (it holds a password)."""
        if value is not None:
            try:
                make_url(value.get_secret_value())
            except ArgumentError:
                raise ValueError(
                    "is not a database URL (e.g. postgresql://user:password@host/cds)"
                ) from None
        return value

    @model_validator(mode="after")
    def _jwks_cache_bounds(self) -> Settings:
        if self.jwks_cache_min_seconds > self.jwks_cache_max_seconds:
            raise ValueError(
                "CYTOKINE_CDS_JWKS_CACHE_MIN_SECONDS must not exceed "
                "CYTOKINE_CDS_JWKS_CACHE_MAX_SECONDS"
            )
        return self

    fhir_allow_loopback: bool = Field(
        False,
        description="Also read any FHIR server on this machine (127.0.0.0/8, ::1, localhost), "
        "allowlisted or not. For demos and local testing (`make run` sets it).",
    )
    fhir_allow_http: bool = Field(
        False,
        description="Allow plain http to FHIR servers that are not on loopback. Off: https only "
        "(tokens and patient data never cross the network unencrypted).",
    )
    # After fhir_allow_http: the allowlist's validator reads it.
    fhir_allowlist: CsvList = Field(
        default_factory=list,
        description="Base URLs of the FHIR servers the service may read, comma-separated. A "
        "request's fhirServer must equal an entry or lie below it (same scheme, host and port). "
        "Empty: no server is read; requests then need complete prefetch.",
    )
    fhir_allow_anonymous: bool = Field(
        True,
        description="Read an allowed FHIR server without a token when the request carries no "
        "fhirAuthorization (the CDS Hooks sandbox's case against open servers). Set false when a "
        "FHIR server trusts its network instead of tokens.",
    )
    fhir_deadline_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Time budget for all FHIR reads of one hook call; what is not read by then "
        "is reported as missing.",
    )
    fhir_request_timeout_seconds: float = Field(
        1.5,
        gt=0,
        le=60,
        description="Connect and read timeout of each FHIR HTTP request (also capped by what "
        "remains of the deadline).",
    )
    fhir_max_pages: int = Field(
        5, ge=1, le=100, description="Most search result pages read per prefetch key."
    )
    fhir_retries: int = Field(
        1,
        ge=0,
        le=5,
        description="Retries of a FHIR GET after a refused/reset connection or HTTP 503, when the "
        "deadline leaves time for them.",
    )
    fhir_max_response_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest FHIR response body read (one page)."
    )
    fhir_merge_code_searches: bool = Field(
        True,
        description="When the service reads the FHIR server itself, send the Observation "
        "searches that differ only in their code lists as one search with all the codes (fewer "
        "requests for the server and for us). Off: one search per prefetch key. The discovery "
        "document's prefetch templates are the same either way.",
    )
    fhir_ca_bundle: FilePath | None = Field(
        None,
        description="CA certificates (PEM file) to verify FHIR servers' TLS certificates, e.g. a "
        "hospital's internal CA. Default: the certifi bundle.",
    )

    _split = field_validator("cors_origins", "fhir_allowlist", mode="before")(_split_csv)

    @field_validator("fhir_allowlist")
    @classmethod
    def _valid_fhir_bases(cls, value: list[str], info: ValidationInfo) -> list[str]:
        allow_http = info.data.get("fhir_allow_http", False)
        for number, entry in enumerate(value, start=1):
            try:
                base = parse_base_url(entry)
            except ValueError as exc:  # the entry is not echoed: it may hold credentials
                raise ValueError(f"entry {number} is not a usable FHIR base URL: {exc}") from None
            if base.scheme == "http" and not base.is_loopback and not allow_http:
                raise ValueError(
                    f"entry {base.url} uses http on a host that is not loopback; use https or "
                    "set CYTOKINE_CDS_FHIR_ALLOW_HTTP=true"
                )
        return value

    data_dir: Path = Field(
        Path("data"),
        description="Folder for the embedded audit database (SQLite) and the generated "
        "patient-key secret. Created on start-up (mode 0700).",
    )
    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL of the audit store, e.g. "
        "`postgresql://user:password@db.example.org/cds` for several replicas. "
        "Default: SQLite file `cytokine-cds.db` in the data dir.",
    )
    db_auto_upgrade: bool | None = Field(
        None,
        description="Apply pending schema migrations at start-up. Default: on for SQLite, off "
        "for PostgreSQL (run `cytokine-cds db upgrade` when deploying).",
    )
    patient_key_secret: SecretStr | None = Field(
        None,
        min_length=16,
        description="Secret for the pseudonymous patient key (HMAC-SHA256 of the patient id). "
        "Default: a random secret generated once and kept in `<data dir>/patient-key.secret`.",
    )

    worker_class: Literal["sync", "gthread"] = Field(
        "sync",
        description="gunicorn worker type. `sync`: one request at a time per worker, the "
        "connection closed after each answer, so the kernel spreads calls evenly over the "
        "workers. `gthread`: CYTOKINE_CDS_THREADS threads per worker and keep-alive connections, "
        "which can pile up on one worker (measured; see README).",
    )
    log_format: Literal["json", "text"] = Field(
        "json",
        description="`json`: one JSON object per log line (app and gunicorn), for log "
        "collectors. `text`: plain lines, for reading in a terminal.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        min_length=16,
        description="When set, GET /metrics requires `Authorization: Bearer <this token>`. "
        "Unset: /metrics is open (it carries no patient data; restrict it at the network).",
    )
    ready_requires_store: bool = Field(
        True,
        description="GET /readyz answers 503 while the audit store is unreachable. Set false to "
        "keep taking hook calls (answered, not recorded) through a database outage.",
    )

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    profile_page: bool = Field(
        True,
        description="Serve the cytokine profile page (GET /profile/<token>) and put a "
        '"View cytokine profile" link on subtype, mixed, multiplex and order-mismatch cards. '
        "Off: no links, and the route answers 404.",
    )
    profile_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="Secret that signs profile links (HMAC-SHA256, itsdangerous). The same on "
        "every replica. Default: a random secret generated once and kept in "
        "`<data dir>/profile-link.secret`.",
    )
    profile_link_lifetime_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 86400,
        description="How long a profile link works after the card was served; later it "
        "answers 403 (link expired).",
    )
    profile_frame_ancestors: CsvList = Field(
        default_factory=list,
        description="Origins allowed to show the profile page in a frame (CSP frame-ancestors), "
        "comma-separated, e.g. `https://ehr.example.org`; `'self'` is allowed. Default: none "
        "(the EHR opens the link in a browser tab or window).",
    )

    _split_frame_ancestors = field_validator("profile_frame_ancestors", mode="before")(_split_csv)

    @field_validator("profile_frame_ancestors")
    @classmethod
    def _frame_ancestor_sources(cls, value: list[str]) -> list[str]:
        for number, entry in enumerate(value, start=1):
            if entry != "'self'" and not _FRAME_ANCESTOR.fullmatch(entry):
                raise ValueError(
                    f"entry {number} must be 'self' or an origin such as "
                    "https://ehr.example.org (scheme, host, optional port; `*.` allowed before "
                    "the host)"
                )
        return value


# A CSP source expression for one origin: nothing that could end or extend the header.
_FRAME_ANCESTOR = re.compile(r"https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?")
