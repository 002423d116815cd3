"""AuditStore on real SQLite and real PostgreSQL: what a hook call and its feedback leave behind."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cds_service.composition import open_audit_store
from cds_service.decision import Decision
from cds_service.recording import record_decision
from cds_service.settings import Settings
from cds_service.store import AuditStore, StoreUnavailable
from cds_service.store.records import ProfileRecord
from cds_service.store.schema import feedback
from tests.store.helpers import (
    EVIDENCE,
    SERVICE_ID,
    StoreEvents,
    hook_call_record,
    make_card,
    stored_cards,
    stored_feedback,
    stored_hook_calls,
)
from tests.store.helpers import feedback_item as item


def test_hook_call_is_recorded_with_its_cards(store: AuditStore) -> None:
    il6 = make_card("il6driven", "warning", suggestions=2)
    multiplex = make_card("multiplexassayneeded", "info", suggestions=0)
    called_at = datetime(2026, 11, 20, 8, 30, 1, 250000, tzinfo=UTC)
    events = StoreEvents()
    assert store.record_hook_call(hook_call_record([il6, multiplex], called_at=called_at))

    [call] = stored_hook_calls(store.engine)
    assert call["service_id"] == "cytokine-storm-patient-view"
    assert call["hook"] == "patient-view"
    assert call["called_at"] == called_at
    assert (call["client_iss"], call["client_tenant"]) == ("https://ehr.example.org", "ward-7")
    assert call["rules_version"] == "rules-2026.11"
    assert call["evidence"] == EVIDENCE
    by_uuid = {row["uuid"]: row for row in stored_cards(store.engine)}
    assert set(by_uuid) == {il6.uuid, multiplex.uuid}
    assert by_uuid[il6.uuid]["topic_code"] == "il6driven"
    assert by_uuid[il6.uuid]["indicator"] == "warning"
    assert by_uuid[il6.uuid]["suggestion_uuids"] == [s.uuid for s in il6.suggestions or ()]
    assert by_uuid[multiplex.uuid]["suggestion_uuids"] == []
    assert {row["hook_call_id"] for row in by_uuid.values()} == {call["id"]}
    assert events.counted() == {"audit_writes": 1}


def test_an_over_long_hook_instance_is_cut_not_lost(store: AuditStore) -> None:
    assert store.record_hook_call(hook_call_record([make_card()], hook_instance="h" * 300))
    [call] = stored_hook_calls(store.engine)
    assert call["hook_instance"] == "h" * 255


def test_a_failed_write_logs_its_own_error_and_the_next_write_is_stored(
    store: AuditStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A write the database refuses (here a profile id already stored) is rolled back whole and
    logged with the database's error, not with one raised while cleaning up after it."""
    profile = ProfileRecord(assessment_id="a-1", profile={"format": 1})
    assert store.record_hook_call(hook_call_record([make_card()], profile=profile))
    events = StoreEvents()
    with caplog.at_level(logging.ERROR, logger="cds_service.store.audit"):
        assert not store.record_hook_call(hook_call_record([make_card()], profile=profile))
    [logged] = [r.getMessage() for r in caplog.records]
    assert ("IntegrityError" in logged) or ("UniqueViolation" in logged), logged
    assert events.counted() == {"audit_write_failures": 1}
    assert len(stored_hook_calls(store.engine)) == 1  # the refused call left nothing behind
    assert store.record_hook_call(hook_call_record([make_card()]))
    assert len(stored_hook_calls(store.engine)) == 2


def test_unauthenticated_call_has_no_client(store: AuditStore) -> None:
    store.record_hook_call(hook_call_record([make_card()], client=None))
    [call] = stored_hook_calls(store.engine)
    assert call["client_iss"] is None and call["client_tenant"] is None


def test_a_reused_card_uuid_keeps_the_first_record_and_the_call(store: AuditStore) -> None:
    card = make_card("il1driven")
    assert store.record_hook_call(hook_call_record([card]))
    assert store.record_hook_call(hook_call_record([card, make_card("mixed")]))
    assert len(stored_hook_calls(store.engine)) == 2
    assert len(stored_cards(store.engine)) == 2


def test_record_answer_keys_the_patient_and_skips_answers_without_cards(
    store: AuditStore, store_settings: Settings
) -> None:
    from cds_service.composition import build_runtime
    from tests.conftest import decide_bundle, load_fixture

    runtime = build_runtime(store_settings, store=store)
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)

    def record(decision: Decision) -> None:
        record_decision(
            store,
            runtime.knowledge,
            decision,
            hook_instance="hi-1",
            service_id="cytokine-storm-patient-view",
            hook="patient-view",
            patient_id="patient-4711",
        )

    quiet = decide_bundle(runtime.knowledge, load_fixture("patients/css-no-inflammation.json"), at)
    record(quiet)
    assert stored_hook_calls(store.engine) == []

    answer = decide_bundle(runtime.knowledge, load_fixture("patients/css-ifng-hlh.json"), at)
    record(answer)
    [call] = stored_hook_calls(store.engine)
    assert call["hook_instance"] == "hi-1"
    assert call["patient_key"] == store.patient_key("patient-4711")
    assert call["patient_key"] != "patient-4711" and len(call["patient_key"]) == 64


def test_feedback_is_stored_and_linked_to_its_card(store: AuditStore) -> None:
    card = make_card("il6driven", suggestions=2)
    store.record_hook_call(hook_call_record([card]))
    suggestion = str((card.suggestions or [])[1].uuid)
    overridden = item(card, "overridden", reason="already-on-therapy", comment="on tocilizumab")
    result = store.record_feedback(
        "cytokine-storm-patient-view",
        [item(card, accepted=[suggestion]), overridden],
    )
    assert (result.received, result.stored, result.orphans) == (2, 2, 0)

    rows = {row["outcome"]: row for row in stored_feedback(store.engine)}
    assert rows["accepted"]["card_uuid"] == card.uuid
    assert rows["accepted"]["orphan"] is False
    assert rows["accepted"]["accepted_suggestions"] == [suggestion]
    assert rows["accepted"]["outcome_at"] == datetime(2026, 11, 20, 8, 31, 2, 518000, tzinfo=UTC)
    assert rows["overridden"]["override_reason_code"] == "already-on-therapy"
    assert rows["overridden"]["override_reason_system"].endswith("/override")
    assert rows["overridden"]["override_comment"] == "on tocilizumab"
    assert rows["overridden"]["accepted_suggestions"] == []


def test_feedback_for_an_unknown_card_is_kept_as_orphan(store: AuditStore) -> None:
    unknown = item("card-from-before-a-restart", accepted=["s1"])
    result = store.record_feedback(SERVICE_ID, [unknown])
    assert result.orphans == 1
    [row] = stored_feedback(store.engine)
    assert row["orphan"] is True and row["card_uuid"] == "card-from-before-a-restart"


def test_the_same_feedback_twice_is_stored_once(store: AuditStore) -> None:
    card = make_card(suggestions=2)
    store.record_hook_call(hook_call_record([card]))
    first, second = (str(s.uuid) for s in card.suggestions or ())
    same = item(card, accepted=[first, second])
    reordered = item(card, accepted=[second, first])
    assert store.record_feedback(SERVICE_ID, [same]).stored == 1
    assert store.record_feedback(SERVICE_ID, [same]).stored == 0
    assert store.record_feedback(SERVICE_ID, [reordered, same]).stored == 0
    # Same card but another action: another timestamp, outcome, suggestion or reason.
    different = [
        item(card, accepted=[first], at="2026-11-20T08:31:03Z"),
        item(card, accepted=[first]),
        item(card, "overridden", reason="not-indicated"),
        item(card, "overridden", reason="already-on-therapy"),
        item(card, "overridden", comment="free text only"),
    ]
    assert store.record_feedback(SERVICE_ID, different).stored == 5
    # A comment is not part of the identity: the first stored comment stays.
    edited = item(card, "overridden", comment="edited")
    assert store.record_feedback(SERVICE_ID, [edited]).stored == 0
    assert len(stored_feedback(store.engine)) == 6


def test_timestamps_in_other_zones_are_the_same_moment(store: AuditStore) -> None:
    card = make_card()
    store.record_feedback(SERVICE_ID, [item(card, at="2026-11-20T09:31:02.518+01:00")])
    same_instant = item(card, at="2026-11-20T08:31:02.518Z")
    assert store.record_feedback(SERVICE_ID, [same_instant]).stored == 0


def test_purge_deletes_what_is_older_than_the_cut_off(store: AuditStore) -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    old, recent = make_card("il1driven"), make_card("il6driven")
    store.record_hook_call(hook_call_record([old], called_at=now - timedelta(days=100)))
    store.record_hook_call(hook_call_record([recent], called_at=now - timedelta(days=10)))
    store.record_feedback(SERVICE_ID, [item(old), item(recent)])
    with store.engine.begin() as connection:
        connection.execute(
            feedback.update()
            .where(feedback.c.card_uuid == old.uuid)
            .values(received_at=now - timedelta(days=99))
        )

    result = store.purge(timedelta(days=30), now=now)

    assert (result.hook_calls, result.cards, result.feedback) == (1, 1, 1)
    assert [row["uuid"] for row in stored_cards(store.engine)] == [recent.uuid]
    assert [row["card_uuid"] for row in stored_feedback(store.engine)] == [recent.uuid]
    assert store.purge(timedelta(days=30), now=now) == type(result)(0, 0, 0)


def test_patient_identifier_never_reaches_the_database(store: AuditStore, tmp_path: Path) -> None:
    key = store.patient_key("MRN-0042-UNIQUE")
    store.record_hook_call(hook_call_record([make_card()], patient_key=key))
    dump = repr(stored_hook_calls(store.engine) + stored_cards(store.engine))
    assert key in dump and "MRN-0042-UNIQUE" not in dump
    if store.dialect == "sqlite":
        store.close()
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
        assert key.encode() in raw and b"MRN-0042-UNIQUE" not in raw


def _down_settings(dialect: str, tmp_path: Path, postgres_port: int) -> Settings:
    if dialect == "sqlite":
        # A database file whose folder is a regular file cannot be opened.
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        url = f"sqlite:///{blocker / 'audit.db'}"
    else:
        url = f"postgresql://postgres@127.0.0.1:{postgres_port}/nothing-listens-here"
    return Settings(data_dir=tmp_path / "data", database_url=url)  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_store_that_is_down_never_raises_on_hook_calls(dialect: str, tmp_path: Path) -> None:
    from tests.servers import free_port

    store = open_audit_store(_down_settings(dialect, tmp_path, free_port()))
    events = StoreEvents()
    assert store.record_hook_call(hook_call_record([make_card()])) is False
    assert store.record_hook_call(hook_call_record([make_card()])) is False
    assert events.counted() == {"audit_write_failures": 2}
    with pytest.raises(StoreUnavailable):
        store.record_feedback(SERVICE_ID, [item("some-card", accepted=["s"])])
    assert events.counted() == {"audit_write_failures": 2, "feedback_write_failures": 1}


def test_audit_writes_resume_after_an_outage(
    postgres_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from cds_service.store import audit

    monkeypatch.setattr(audit, "OUTAGE_BACKOFF_SECONDS", 0.2)
    name = "cds_outage_test"
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(data_dir=tmp_path / "data", database_url=url)  # type: ignore[arg-type]
    store = open_audit_store(settings)
    events = StoreEvents()
    assert store.record_hook_call(hook_call_record([make_card()])) is False  # no database yet
    assert store.record_hook_call(hook_call_record([make_card()])) is False  # backing off
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        store.prepare(auto_upgrade=True)
        time.sleep(0.25)
        assert store.record_hook_call(hook_call_record([make_card()])) is True
        assert events.counted() == {"audit_write_failures": 2, "audit_writes": 1}
        assert len(stored_hook_calls(store.engine)) == 1
    finally:
        store.close()
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_a_retried_call_counts_its_last_answer_as_shown(store: AuditStore) -> None:
    """A client that sends the same hookInstance again (a retry after a timeout) shows the last
    answer it got: the earlier answer's cards are not counted as shown, unless they got
    feedback (then the clinician saw them). Another service's call with that hookInstance is
    another call."""
    from cds_service.store import report

    first, retry, answered = make_card("il6driven"), make_card("il6driven"), make_card("crs")
    same = {"hook_instance": "7a1c3f52-0b5e-4c55-9a3e-2f1e8d6b9c01"}
    store.record_hook_call(hook_call_record([first, answered], **same))
    store.record_hook_call(hook_call_record([retry], **same))
    store.record_hook_call(
        hook_call_record([make_card("il6driven")], **same, service_id="cytokine-storm-order-sign")
    )
    store.record_feedback(SERVICE_ID, [item(answered)])
    shown = {t.topic: t.shown for t in report.build_report(store.engine).topics}
    assert shown == {"il6driven": 2, "crs": 1}  # the retry's card, the other service's, crs
    assert report.count_cards(store.engine) == 3


def test_a_reused_hook_instance_of_another_client_or_patient_is_another_call(
    store: AuditStore,
) -> None:
    """A client that sends one hookInstance for every call (a fixed value in a test harness)
    or two clients that happen to send the same one: calls for another patient, from another
    client or tenant, each count; only the same client's repeat for the same patient is a
    retry. A call without a client identity (authentication off) matches one without it."""
    from cds_service.store import report
    from cds_service.store.records import ClientIdentity

    fixed = {"hook_instance": "00000000-0000-0000-0000-000000000000"}
    store.record_hook_call(hook_call_record([make_card("a")], **fixed))
    store.record_hook_call(hook_call_record([make_card("b")], **fixed, patient_key="1" * 64))
    other_tenant = ClientIdentity(iss="https://ehr.example.org", tenant="ward-9")
    store.record_hook_call(hook_call_record([make_card("c")], **fixed, client=other_tenant))
    other_client = ClientIdentity(iss="https://other-ehr.example.org", tenant="ward-7")
    store.record_hook_call(hook_call_record([make_card("d")], **fixed, client=other_client))
    store.record_hook_call(hook_call_record([make_card("e")], **fixed, client=None))
    store.record_hook_call(hook_call_record([make_card("f")], **fixed, client=None))
    shown = {t.topic: t.shown for t in report.build_report(store.engine).topics}
    assert shown == {"a": 1, "b": 1, "c": 1, "d": 1, "f": 1}
