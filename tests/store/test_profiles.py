"""Profile page data in the audit store, on real SQLite and real PostgreSQL: written
with its hook call, read by assessment id, purged with its hook call, migrated up and down."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import inspect

from cds_service import create_app
from cds_service.settings import Settings
from cds_service.store import AuditStore, ProfileRecord, migrate
from tests.conftest import hook_call
from tests.store.helpers import hook_call_record, make_card
from tests.store.test_report_cli import cli

PROFILE = {"format": 1, "values": [1.5, 2], "label": "IL-1β ünïcode"}


def test_a_profile_is_written_with_its_hook_call_and_read_by_id(store: AuditStore) -> None:
    record = hook_call_record([make_card("il1driven")], profile=ProfileRecord("a" * 22, PROFILE))
    assert store.record_hook_call(record)
    assert store.profile("a" * 22) == PROFILE
    assert store.profile("b" * 22) is None


def test_the_real_hook_call_stores_the_profile_its_card_links_to(
    store: AuditStore, store_settings: Settings
) -> None:
    app = create_app(store_settings.model_copy(update={"profile_secret": None}))
    with app.test_client() as client:
        response = hook_call(client, "patient-view", "css-ifng-hlh")
        (card,) = response.get_json()["cards"]
        (link,) = card["links"]
        assessment_id = urlsplit(link["url"]).path.rsplit("/", 1)[1].split(".")[0]
        stored = store.profile(assessment_id)
        assert stored is not None
        assert stored["assessment"]["subtype"] == "ifng-driven"
        assert "css-ifng-hlh" not in str(stored)
        page = client.get(urlsplit(link["url"]).path)
        assert page.status_code == 200
        assert "pattern consistent with IFN-γ-driven hyperinflammation" in page.get_data(
            as_text=True
        )


def test_purge_takes_profiles_with_their_hook_calls(store: AuditStore) -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    old = hook_call_record(
        [make_card("il1driven")],
        called_at=now - timedelta(days=100),
        profile=ProfileRecord("o" * 22, PROFILE, created_at=now - timedelta(days=100)),
    )
    recent = hook_call_record(
        [make_card("il6driven")],
        called_at=now - timedelta(days=1),
        profile=ProfileRecord("r" * 22, PROFILE, created_at=now - timedelta(days=1)),
    )
    assert store.record_hook_call(old) and store.record_hook_call(recent)
    result = store.purge(timedelta(days=30), now=now)
    assert (result.hook_calls, result.cards, result.profiles) == (1, 1, 1)
    assert store.profile("o" * 22) is None
    assert store.profile("r" * 22) == PROFILE


def test_db_purge_reports_profiles(store: AuditStore, store_settings: Settings) -> None:
    when = datetime.now(UTC) - timedelta(days=40)
    record = hook_call_record(
        [make_card("mixedpattern")],
        called_at=when,
        profile=ProfileRecord("p" * 22, PROFILE, created_at=when),
    )
    assert store.record_hook_call(record)
    result: subprocess.CompletedProcess[str] = cli(
        store_settings, "db", "purge", "--older-than", "30"
    )
    assert result.returncode == 0, result.stderr
    assert "purged 1 hook call(s), 1 card(s), 1 profile(s) and 0 feedback item(s)" in (
        result.stdout
    )
    assert store.profile("p" * 22) is None


def test_migration_0002_adds_and_removes_only_the_profiles_table(store: AuditStore) -> None:
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    migrate.downgrade(store.engine, "0001")
    assert "profiles" not in inspect(store.engine).get_table_names()
    assert {"hook_calls", "cards", "feedback"} <= set(inspect(store.engine).get_table_names())
    migrate.upgrade(store.engine)
    assert "profiles" in inspect(store.engine).get_table_names()
    assert store.record_hook_call(
        hook_call_record([make_card()], profile=ProfileRecord("u" * 22, PROFILE))
    )
