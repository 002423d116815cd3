"""AuditStore: writes what the service told clinicians and what they did with it.

- record_hook_call() runs inside the hook request and never raises: when the store is down the
  call still answers, the failure is logged (without patient data) and counted, and writes are
  skipped for a few seconds so an outage does not add a connection timeout to every call.
- record_feedback() commits before it returns, so the 200 the endpoint answers afterwards is
  only sent for stored feedback; it raises StoreUnavailable when it could not commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Engine, Table, delete, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.sql.dml import ReturningInsert

from cds_service.hooks.feedback import FeedbackItem
from cds_service.observability.logs import logged_hook_instance
from cds_service.observability.metrics import record_store_event
from cds_service.store import migrate
from cds_service.store.database import READ_ONLY
from cds_service.store.driver_sql import (
    DriverStatement,
    driver_errors,
    driver_outages,
    driver_transaction,
)
from cds_service.store.patient_key import PatientKeyer
from cds_service.store.records import ClientIdentity, HookCallRecord, dedupe_key
from cds_service.store.schema import cards, feedback, hook_calls, profiles

log = logging.getLogger(__name__)

# After a failed audit write, later ones are skipped (and counted) for this long.
OUTAGE_BACKOFF_SECONDS = 5.0
PURGE_BATCH = 5000
HOOK_INSTANCE_MAX = 255  # the hook_calls.hook_instance column
_HOOK_CALL_COLUMNS = (
    "hook_instance",
    "service_id",
    "hook",
    "called_at",
    "client_iss",
    "client_tenant",
    "patient_key",
    "rules_version",
    "evidence",
    "data_problems",
    "trigger_action",
    "criteria_id",
)
_PROFILE_COLUMNS = ("assessment_id", "hook_call_id", "created_at", "profile")
_CARD_COLUMNS = (
    "uuid",
    "hook_call_id",
    "topic_system",
    "topic_code",
    "indicator",
    "suggestion_uuids",
)


class StoreError(Exception):
    """The store cannot be used as configured (e.g. its schema is behind this version)."""


class StoreMissing(StoreError):
    """A command that only reads the store found none where the settings point."""


class StoreUnavailable(Exception):
    """A write could not be committed; nothing was acknowledged."""


class FeedbackRejected(ValueError):
    """A feedback item contradicts the card it names; nothing was stored. `field` is its path."""

    field: str


class UnknownSuggestion(FeedbackRejected):
    """A feedback item accepts a suggestion its stored card does not have."""

    def __init__(self, item: int, position: int, card: str, suggestion: str) -> None:
        self.field = f"feedback.{item}.acceptedSuggestions.{position}.id"
        super().__init__(
            f"{self.field}: card {card} has no suggestion '{suggestion}'; nothing was stored"
        )


class CardOfAnotherService(FeedbackRejected):
    """A feedback item names a card another service of ours returned: the client sent it to
    the wrong service's endpoint, and storing it there would count it for the wrong service."""

    def __init__(self, item: int, card: str, served_by: str, service_id: str) -> None:
        self.field = f"feedback.{item}.card"
        super().__init__(
            f"{self.field}: card {card} was returned by service '{served_by}', not "
            f"'{service_id}'; send its feedback to /cds-services/{served_by}/feedback. "
            "Nothing was stored"
        )


@dataclass(frozen=True)
class FeedbackResult:
    received: int
    stored: int  # received minus items already stored earlier (idempotent resends)
    orphans: int  # items whose card uuid no served card has


@dataclass(frozen=True)
class PurgeResult:
    hook_calls: int
    cards: int
    feedback: int
    profiles: int = 0  # cytokine profile pages, purged with their hook calls


class AuditStore:
    def __init__(self, engine: Engine, patient_key: PatientKeyer | None = None) -> None:
        self.engine = engine
        self.patient_key = patient_key
        self._skip_audit_until = 0.0
        self._insert_card = self._insert_ignoring(cards, "uuid")
        dialect = engine.dialect
        # The per-call audit write, on the driver's cursor (see driver_sql.py).
        self._write_hook_call = DriverStatement(
            insert(hook_calls).returning(hook_calls.c.id), dialect, _HOOK_CALL_COLUMNS
        )
        self._write_profile = DriverStatement(insert(profiles), dialect, _PROFILE_COLUMNS)
        self._write_card = DriverStatement(self._insert_card, dialect, _CARD_COLUMNS)
        self._driver_errors = driver_errors(dialect)
        self._driver_outages = driver_outages(dialect)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> str | None:
        """None when the database answers a `SELECT 1` (a pooled connection, bounded by the
        connect timeout); else the driver's error class name, never its message (it may carry
        the database URL)."""
        try:
            with self.engine.connect().execution_options(**{READ_ONLY: True}) as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return type(getattr(exc, "orig", None) or exc).__name__
        return None

    def prepare(self, auto_upgrade: bool | None) -> None:
        """At start-up: migrate (when configured) or check the schema is current.

        An unreachable database is logged, not fatal: hooks still answer while it is down. A
        schema behind this version without auto-upgrade is fatal: it is a deployment mistake.
        Pooled connections are closed afterwards, before gunicorn forks its workers.
        """
        upgrade = self.dialect == "sqlite" if auto_upgrade is None else auto_upgrade
        try:
            if upgrade:
                migrate.upgrade(self.engine)
            else:
                self.check_schema()
        except OperationalError as exc:
            log.error(
                "audit store %s unreachable at start-up (%s); hook calls are answered, "
                "audit writes are counted as failures and feedback answers 503 until it is back",
                self.engine.url.render_as_string(hide_password=True),
                _error_name(exc),
            )
        finally:
            self.engine.dispose()

    def check_schema(self) -> None:
        current, head = migrate.current_revision(self.engine), migrate.head_revision()
        if current != head:
            raise StoreError(
                f"the audit store's schema is at revision {current or 'none'}, this version "
                f"needs {head}: run `cytokine-cds db upgrade` (or set "
                "CYTOKINE_CDS_DB_AUTO_UPGRADE=true)"
            )

    def record_hook_call(self, record: HookCallRecord) -> bool:
        """Store one answered hook call and its cards. Never raises; False when not stored."""
        if time.monotonic() < self._skip_audit_until:
            record_store_event("audit_write_failures")
            return False
        try:
            with driver_transaction(self.engine) as cursor:
                self._insert_hook_call(cursor, record)
        except Exception as exc:  # an audit failure must never fail the hook call
            record_store_event("audit_write_failures")
            if isinstance(exc, self._driver_outages):
                self._skip_audit_until = time.monotonic() + OUTAGE_BACKOFF_SECONDS
            log.error(
                "audit write failed for hookInstance %s (%s); the hook call was answered",
                logged_hook_instance(record.hook_instance),
                _error_name(exc),
                exc_info=not isinstance(exc, self._driver_errors),  # a bug: show where
            )
            return False
        record_store_event("audit_writes")
        return True

    def _insert_hook_call(self, cursor: Any, record: HookCallRecord) -> None:
        client = record.client or ClientIdentity()
        returned = self._write_hook_call.run(
            cursor,
            {
                # A UUID per the spec; an over-long one from a client is cut, not lost.
                "hook_instance": record.hook_instance[:HOOK_INSTANCE_MAX],
                "service_id": record.service_id,
                "hook": record.hook,
                "called_at": record.called_at,
                "client_iss": client.iss,
                "client_tenant": client.tenant,
                "patient_key": record.patient_key,
                "rules_version": record.rules_version,
                "evidence": list(record.evidence),
                "data_problems": list(record.data_problems),
                "trigger_action": record.trigger.action if record.trigger else None,
                "criteria_id": record.trigger.criteria_id if record.trigger else None,
            },
        )
        hook_call_id = returned[0][0]
        if record.profile is not None:  # cytokine profile page
            self._write_profile.run(
                cursor,
                {
                    "assessment_id": record.profile.assessment_id,
                    "hook_call_id": hook_call_id,
                    "created_at": record.profile.created_at,
                    "profile": record.profile.profile,
                },
            )
        if not record.cards:
            return
        rows = [
            {
                "uuid": card.uuid,
                "hook_call_id": hook_call_id,
                "topic_system": card.topic_system,
                "topic_code": card.topic_code,
                "indicator": card.indicator,
                "suggestion_uuids": list(card.suggestion_uuids),
            }
            for card in record.cards
        ]
        # A card uuid is unique per served card (spec); a reused one keeps its first record.
        inserted = sum(len(self._write_card.run(cursor, row)) for row in rows)
        if inserted != len(rows):
            log.warning(
                "hookInstance %s: %d card uuid(s) were already recorded for an earlier call",
                logged_hook_instance(record.hook_instance),
                len(rows) - inserted,
            )

    def record_feedback(
        self,
        service_id: str,
        items: Sequence[FeedbackItem],
        client: ClientIdentity | None = None,
    ) -> FeedbackResult:
        """Store feedback items once each, committed before returning."""
        client = client or ClientIdentity()
        received_at = datetime.now(UTC)
        try:
            with self.engine.begin() as connection:
                uuids = {item.card for item in items}
                served = connection.execute(
                    select(cards.c.uuid, cards.c.suggestion_uuids, hook_calls.c.service_id)
                    .join(hook_calls, cards.c.hook_call_id == hook_calls.c.id)
                    .where(cards.c.uuid.in_(uuids))
                ).all()
                offered = {uuid: set(suggestions or ()) for uuid, suggestions, _ in served}
                _check_service({uuid: by for uuid, _, by in served}, items, service_id)
                _check_accepted(items, offered)
                known = set(offered)
                rows = [
                    _feedback_row(item, service_id, item.card not in known, received_at, client)
                    for item in items
                ]
                stored = _count(
                    connection.execute(self._insert_ignoring(feedback, "dedupe_key"), rows)
                )
        except SQLAlchemyError as exc:
            record_store_event("feedback_write_failures")
            log.error(
                "feedback for service %s could not be stored (%s); answered 503",
                service_id,
                _error_name(exc),
            )
            raise StoreUnavailable(str(type(exc).__name__)) from exc
        orphans = sum(1 for row in rows if row["orphan"])
        return FeedbackResult(received=len(items), stored=stored, orphans=orphans)

    def _insert_ignoring(self, table: Table, unique_column: str) -> ReturningInsert[Any]:
        """INSERT ... ON CONFLICT (unique_column) DO NOTHING RETURNING it, in the store's
        dialect: the rows returned are the ones inserted (rowcount is unreliable for
        executemany on psycopg)."""
        if self.dialect == "postgresql":
            statement = postgresql.insert(table).on_conflict_do_nothing(
                index_elements=[unique_column]
            )
            return statement.returning(table.c[unique_column])
        lite = sqlite.insert(table).on_conflict_do_nothing(index_elements=[unique_column])
        return lite.returning(table.c[unique_column])

    def purge(self, older_than: timedelta, now: datetime | None = None) -> PurgeResult:
        """Delete hook calls (with their cards) and feedback older than `older_than`.

        In batches, so a purge of a large store never holds the write lock for long.
        """
        cutoff = (now or datetime.now(UTC)) - older_than
        calls = self._purge_batches(
            hook_calls,
            hook_calls.c.called_at,
            cutoff,
            (cards.c.hook_call_id, profiles.c.hook_call_id),
        )
        answers = self._purge_batches(feedback, feedback.c.received_at, cutoff)
        return PurgeResult(
            hook_calls=calls["hook_calls"],
            cards=calls["cards"],
            profiles=calls["profiles"],
            feedback=answers["feedback"],
        )

    def _purge_batches(
        self,
        table: Table,
        time_column: Column[Any],
        cutoff: datetime,
        children: tuple[Column[Any], ...] = (),
    ) -> dict[str, int]:
        """Delete rows of `table` older than `cutoff`, with their children's rows, in batches.

        Returns the number of rows deleted per table name.
        """
        deleted = {t.name: 0 for t in (table, *(column.table for column in children))}
        while True:
            with self.engine.begin() as connection:
                ids = list(
                    connection.scalars(
                        select(table.c.id).where(time_column < cutoff).limit(PURGE_BATCH)
                    )
                )
                if not ids:
                    return deleted
                for column in children:  # children first: they reference the parent rows
                    child = column.table
                    result = connection.execute(delete(child).where(column.in_(ids)))
                    deleted[child.name] += result.rowcount
                result = connection.execute(delete(table).where(table.c.id.in_(ids)))
                deleted[table.name] += result.rowcount

    def profile(self, assessment_id: str) -> dict[str, Any] | None:
        """The stored profile page data, or None. Raises StoreUnavailable when it cannot read."""
        try:
            with self.engine.connect().execution_options(**{READ_ONLY: True}) as connection:
                found = connection.scalar(
                    select(profiles.c.profile).where(profiles.c.assessment_id == assessment_id)
                )
        except SQLAlchemyError as exc:
            log.error("profile page: the store could not be read (%s)", _error_name(exc))
            raise StoreUnavailable(type(exc).__name__) from exc
        return found if isinstance(found, dict) else None


def _feedback_row(
    item: FeedbackItem,
    service_id: str,
    orphan: bool,
    received_at: datetime,
    client: ClientIdentity,
) -> dict[str, Any]:
    override = item.overrideReason
    reason = override.reason if override else None
    return {
        "dedupe_key": dedupe_key(item),
        "service_id": service_id,
        "card_uuid": item.card,
        "orphan": orphan,
        "outcome": item.outcome,
        "accepted_suggestions": [s.id for s in item.acceptedSuggestions or ()],
        "override_reason_system": reason.system if reason else None,
        "override_reason_code": reason.code if reason else None,
        "override_reason_display": reason.display if reason else None,
        "override_comment": override.userComment if override else None,
        "outcome_at": item.outcomeTimestamp,
        "received_at": received_at,
        "client_iss": client.iss,
        "client_tenant": client.tenant,
    }


def _count(result: CursorResult[Any]) -> int:
    return len(result.all())


def _error_name(exc: BaseException) -> str:
    """The driver's error class (e.g. psycopg's ConnectionTimeout): enough to act on, no data."""
    original = getattr(exc, "orig", None)
    return type(original or exc).__name__


def _check_service(
    served_by: dict[str, str], items: Sequence[FeedbackItem], service_id: str
) -> None:
    """Raise CardOfAnotherService for an item whose card another of our services returned."""
    for index, item in enumerate(items):
        by = served_by.get(item.card)
        if by is not None and by != service_id:
            raise CardOfAnotherService(index, item.card, by, service_id)


def _check_accepted(items: Sequence[FeedbackItem], offered: dict[str, set[str]]) -> None:
    """Raise UnknownSuggestion for an accepted suggestion the stored card never offered (a card
    the store does not know is an orphan: it cannot be checked)."""
    for index, item in enumerate(items):
        suggestions = offered.get(item.card)
        if suggestions is None:
            continue
        for position, accepted in enumerate(item.acceptedSuggestions or ()):
            if accepted.id not in suggestions:
                raise UnknownSuggestion(index, position, item.card, accepted.id)
