"""Store fixtures: every store test runs on real SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cds_service.composition import open_audit_store
from cds_service.settings import Settings
from cds_service.store import AuditStore
from tests.postgres import PostgresUnavailable, fresh_database, postgres_server

DIALECTS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A superuser URL of the session's PostgreSQL server (started here unless configured)."""
    configured = os.environ.get("CYTOKINE_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")


@pytest.fixture(params=DIALECTS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    with fresh_database(admin_url) as url:
        yield url


@pytest.fixture
def store_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        auth="off",  # who calls is tests/auth's subject; here: what is stored
        data_dir=tmp_path / "data",
        database_url=database_url,  # type: ignore[arg-type]
        db_auto_upgrade=True,
    )


@pytest.fixture
def store(store_settings: Settings) -> Iterator[AuditStore]:
    """A migrated store on a fresh database."""
    store = open_audit_store(store_settings)
    store.prepare(auto_upgrade=True)
    yield store
    store.close()
