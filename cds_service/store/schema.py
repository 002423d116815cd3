"""The audit store's tables (SQLAlchemy Core). Migrations in `migrations/` create them.

hook_calls  one row per hook call that answered with cards
cards       one row per card served, keyed by the card's uuid (unique per card, as the spec asks)
feedback    one row per distinct feedback item; `dedupe_key` makes a resent item a no-op
used_tokens one row per accepted CDS client JWT until it expires (replay protection)

Times are stored as timezone-aware UTC. Patient identifiers are never stored: `patient_key` is a
keyed hash (see patient_key.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

# A primary key SQLite auto-increments (INTEGER) and PostgreSQL sizes for years of calls (BIGINT).
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores text without a zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the audit store; use an aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

hook_calls = Table(
    "hook_calls",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hook_instance", String(255), nullable=False),
    Column("service_id", String(128), nullable=False),
    Column("hook", String(64), nullable=False),
    Column("called_at", UtcDateTime(), nullable=False),
    Column("client_iss", Text),
    Column("client_tenant", Text),
    Column("patient_key", String(64)),
    Column("rules_version", String(128)),
    # [{analyte, value, unit, comparator, effective, source}]: the lab values the cards used.
    Column("evidence", JSON, nullable=False),
    # [{code, reason}]: what could not be read or was odd in the data (no resource ids).
    Column("data_problems", JSON),
    # What fired the call in the EHR (Epic: bpa-trigger-action, criteria-id), for the report.
    Column("trigger_action", String(64)),
    Column("criteria_id", String(128)),
    Index(None, "called_at"),
    Index(None, "hook_instance"),
)

cards = Table(
    "cards",
    metadata,
    Column("uuid", String(128), primary_key=True),
    Column(
        "hook_call_id",
        Id,
        ForeignKey("hook_calls.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("topic_system", Text),
    Column("topic_code", String(128)),
    Column("indicator", String(16), nullable=False),
    Column("suggestion_uuids", JSON, nullable=False),
    Index(None, "hook_call_id"),
    Index(None, "topic_code"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # SHA-256 over card + outcome + outcomeTimestamp + accepted ids + reason (records.py).
    Column("dedupe_key", String(64), nullable=False, unique=True),
    Column("service_id", String(128), nullable=False),
    Column("card_uuid", String(128), nullable=False),
    # True when no served card has this uuid (e.g. feedback for a card from before a purge).
    Column("orphan", Boolean, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", JSON, nullable=False),
    Column("override_reason_system", Text),
    Column("override_reason_code", Text),
    Column("override_reason_display", Text),
    Column("override_comment", Text),
    Column("outcome_at", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("client_iss", Text),
    Column("client_tenant", Text),
    Index(None, "card_uuid"),
    Index(None, "received_at"),
)

# profiles  one row per assessment behind a card's "View cytokine profile" link: the page's data
#           (assessment, thresholds, per-analyte history; no patient or resource ids), written
#           with its hook call and purged with it.
profiles = Table(
    "profiles",
    metadata,
    # Random, URL-safe (secrets.token_urlsafe(16)); named by the signed link token.
    Column("assessment_id", String(64), primary_key=True),
    Column(
        "hook_call_id",
        Id,
        ForeignKey("hook_calls.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("profile", JSON, nullable=False),
    Index(None, "hook_call_id"),
    Index(None, "created_at"),
)

# used_tokens  one row per accepted CDS client JWT, until it expires: its (issuer, jti), hashed,
#              so every worker and every replica sharing the database refuses a second use.
used_tokens = Table(
    "used_tokens",
    metadata,
    # SHA-256 (hex) of issuer NUL jti: bounded length, and neither is stored in clear.
    Column("token_key", String(64), primary_key=True),
    # Epoch seconds after which the token is refused as expired anyway (exp + leeway).
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)
