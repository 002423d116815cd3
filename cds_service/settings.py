"""Service settings: one object, read once from CYTOKINE_CDS_* environment variables.

No other module reads the environment; create_app() builds a Settings and passes it down.
Every field here is documented in the README's configuration table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: Any) -> Any:
    """Allow list settings as comma-separated environment values ("a,b") as well as lists."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CYTOKINE_CDS_", extra="forbid")

    # --- HTTP serving -------------------------------------------------------------------------
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
        1024 * 1024, ge=1024, description="Largest accepted request body; larger answers 413."
    )
    log_level: str = Field("INFO", description="Python log level.")
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="gunicorn worker processes. Default: one per CPU core.",
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

    # --- knowledge files -----------------------------------------------------------------------
    cards_dir: Path | None = Field(
        None,
        description="Folder of card templates. Default: the `cards/` folder shipped with the "
        "service.",
    )

    # --- audit trail and feedback (issue 5: cds_service/store) ---------------------------------
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

    _split = field_validator("cors_origins", mode="before")(_split_csv)

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value
