"""Migrations build exactly the schema the code uses; start-up migrates or refuses clearly."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from cds_service import create_app
from cds_service.composition import open_audit_store
from cds_service.settings import Settings
from cds_service.store import StoreError, checkpoint, migrate
from cds_service.store.database import store_url
from cds_service.store.patient_key import SECRET_FILE, PatientKeyer, load_or_create_secret
from cds_service.store.records import ProfileRecord
from cds_service.store.schema import metadata
from tests.conftest import load_fixture
from tests.servers import free_port
from tests.store.helpers import feedback_json, hook_call_record, make_card

TABLES = {"alembic_version", "hook_calls", "cards", "feedback", "profiles", "used_tokens"}


def _settings(tmp_path: Path, database_url: str, **fields: object) -> Settings:
    return Settings(auth="off", data_dir=tmp_path / "data", database_url=database_url, **fields)  # type: ignore[arg-type]


def test_migrations_produce_the_schema_the_code_declares(database_url: str, tmp_path: Path) -> None:
    store = open_audit_store(_settings(tmp_path, database_url))
    migrate.upgrade(store.engine)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    store.close()


def test_downgrade_to_empty_and_upgrade_again(database_url: str, tmp_path: Path) -> None:
    store = open_audit_store(_settings(tmp_path, database_url))
    migrate.upgrade(store.engine)
    migrate.downgrade(store.engine, "base")
    assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}
    migrate.upgrade(store.engine)
    assert set(inspect(store.engine).get_table_names()) == TABLES
    store.close()


def test_upgrade_twice_is_a_no_op(database_url: str, tmp_path: Path) -> None:
    store = open_audit_store(_settings(tmp_path, database_url))
    migrate.upgrade(store.engine)
    migrate.upgrade(store.engine)
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    store.close()


def test_default_store_is_sqlite_in_wal_mode_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(auth="off", data_dir=tmp_path / "data")
    create_app(settings)  # auto-upgrade is on by default for SQLite
    database = tmp_path / "data" / "cytokine-cds.db"
    assert database.exists()
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert set(inspect(engine).get_table_names()) == TABLES
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    engine.dispose()


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoint" and t.is_alive()]


def test_the_wal_is_checkpointed_by_a_thread_that_can_be_stopped(tmp_path: Path) -> None:
    """Commits only append to the WAL (see checkpoint.py); a thread copies them into the
    database file every second. The gunicorn master stops it before forking its workers."""
    store = open_audit_store(Settings(auth="off", data_dir=tmp_path / "data"))
    store.prepare(auto_upgrade=True)
    try:
        database = tmp_path / "data" / "cytokine-cds.db"
        before = database.stat().st_size
        profile = {"format": 1, "padding": "x" * 200_000}  # ~50 pages, all in the WAL first
        record = hook_call_record([make_card()], profile=ProfileRecord("a-1", profile))
        assert store.record_hook_call(record)
        assert len(_checkpoint_threads()) == 1
        deadline = time.monotonic() + 10
        while database.stat().st_size <= before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert database.stat().st_size > before + 150_000  # copied by the thread, not a commit

        checkpoint.stop_checkpointer()
        assert _checkpoint_threads() == []
        checkpoint.stop_checkpointer()  # none running: nothing to do
        store.engine.dispose()  # as in a forked worker: its pool starts empty
        assert store.record_hook_call(hook_call_record([make_card()]))  # a new connection...
        assert len(_checkpoint_threads()) == 1  # ...in a process without one starts it again
    finally:
        store.close()


def test_postgresql_urls_use_psycopg_3(tmp_path: Path) -> None:
    url = store_url("postgresql://u:p@db.invalid/cds", tmp_path)
    assert url.drivername == "postgresql+psycopg"
    assert "p@" not in repr(url)  # the password is masked wherever the URL is shown


def test_start_up_refuses_a_schema_behind_without_auto_upgrade(
    database_url: str, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="cytokine-cds db upgrade"):
        create_app(_settings(tmp_path, database_url, db_auto_upgrade=False))


def test_auto_upgrade_defaults_on_for_sqlite_off_for_postgresql(
    database_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, database_url)
    if database_url.startswith("sqlite"):
        create_app(settings)
    else:
        with pytest.raises(StoreError, match="schema is at revision none"):
            create_app(settings)
        create_app(_settings(tmp_path, database_url, db_auto_upgrade=True))
    store = open_audit_store(settings)
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    store.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_store_down_at_start_up_still_answers_hooks_and_503s_feedback(
    dialect: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if dialect == "sqlite":
        (tmp_path / "blocker").write_text("")
        url = f"sqlite:///{tmp_path / 'blocker' / 'audit.db'}"
    else:
        url = f"postgresql://postgres:pw@127.0.0.1:{free_port()}/cds"
    app = create_app(_settings(tmp_path, url, db_auto_upgrade=True))
    assert "unreachable at start-up" in caplog.text
    assert ":pw@" not in caplog.text
    client = app.test_client()
    hook = client.post(
        "/cds-services/cytokine-storm-patient-view", json=load_fixture("hooks/patient-view.json")
    )
    assert hook.status_code == 200
    answer = client.post(
        "/cds-services/cytokine-storm-patient-view/feedback",
        json={"feedback": [feedback_json(make_card())]},
    )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.get_json()["resourceType"] == "OperationOutcome"


def test_generated_secret_is_private_persistent_and_shared(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    first = open_audit_store(Settings(data_dir=data))
    assert "CYTOKINE_CDS_PATIENT_KEY_SECRET" in caplog.text
    secret_file = data / SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    second = open_audit_store(Settings(data_dir=data))  # a restart, another worker
    assert first.patient_key("p-1") == second.patient_key("p-1")
    assert first.patient_key("p-1") != first.patient_key("p-2")
    assert list(data.iterdir()) == [secret_file]  # no temporary files left behind


def test_explicit_secret_is_used_and_no_file_is_written(tmp_path: Path) -> None:
    import hashlib
    import hmac

    secret = "a-long-hospital-wide-secret-value"
    settings = Settings(data_dir=tmp_path / "data", patient_key_secret=secret)  # type: ignore[arg-type]
    store = open_audit_store(settings)
    expected = hmac.new(secret.encode(), b"p-1", hashlib.sha256).hexdigest()
    assert store.patient_key("p-1") == expected
    assert not (tmp_path / "data" / SECRET_FILE).exists()
    assert secret not in repr(settings) and secret not in repr(store.patient_key)


def test_short_explicit_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="patient_key_secret"):
        Settings(patient_key_secret="short")  # type: ignore[arg-type]


def _read_secret(data_dir: str) -> bytes:
    return load_or_create_secret(Path(data_dir))


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        secrets = pool.map(_read_secret, [str(tmp_path)] * 12)
    assert len(set(secrets)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [SECRET_FILE]
    assert PatientKeyer(secrets[0])("x") == PatientKeyer(secrets[0])("x")
    assert os.stat(tmp_path / SECRET_FILE).st_mode & 0o077 == 0
