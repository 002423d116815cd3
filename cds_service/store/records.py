"""What the store records, as plain data: built by the caller, written by AuditStore.

The audit store sits beside the request flow: it reads the response models (cards) and the
feedback wire model, and receives everything else (client, evidence, rules version) as values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from cds_service.hooks.feedback import FeedbackItem
from cds_service.hooks.response import Card


class EvidenceEntry(TypedDict, total=False):
    """One lab value a recommendation used, as the evidence layer summarises it."""

    analyte: str
    value: float | str | None
    unit: str | None
    comparator: str | None
    effective: str | None  # ISO 8601
    source: str | None  # e.g. "prefetch:cytokines" or "fhir"


class ProblemEntry(TypedDict):
    """A data problem met while reading the call's data: its code and reason, no reference
    (resource ids can be built from record numbers)."""

    code: str
    reason: str


@dataclass(frozen=True)
class ClientIdentity:
    """The verified calling client (JWT `iss`, optional `tenant`)."""

    iss: str | None = None
    tenant: str | None = None

    @classmethod
    def from_verified(cls, client: object | None) -> ClientIdentity | None:
        """Read whatever the auth layer stored (any object with .iss/.tenant), defensively."""
        if client is None:
            return None
        iss, tenant = getattr(client, "iss", None), getattr(client, "tenant", None)
        if iss is None and tenant is None:
            return None
        return cls(
            iss=None if iss is None else str(iss), tenant=None if tenant is None else str(tenant)
        )


@dataclass(frozen=True)
class EhrTrigger:
    """What fired the hook call in the EHR, when the client says (Epic's request extension)."""

    action: str | None = None  # e.g. "60" open chart, "18" enter order, "23" sign orders
    criteria_id: str | None = None  # the EHR's rule that made the call


@dataclass(frozen=True)
class CardRecord:
    uuid: str
    indicator: str
    topic_system: str | None = None
    topic_code: str | None = None
    suggestion_uuids: tuple[str, ...] = ()

    @classmethod
    def from_card(cls, card: Card) -> CardRecord | None:
        """The audit row for a served card; None without a uuid (no feedback can name it)."""
        if card.uuid is None:
            return None
        topic = card.source.topic
        return cls(
            uuid=card.uuid,
            indicator=card.indicator,
            topic_system=topic.system if topic else None,
            topic_code=topic.code if topic else None,
            suggestion_uuids=tuple(s.uuid for s in card.suggestions or () if s.uuid),
        )


@dataclass(frozen=True)
class ProfileRecord:
    """The data of one profile page, stored with the hook call whose card links to it."""

    assessment_id: str
    profile: dict[str, Any]  # JSON: assessment and lab history, no patient or resource ids
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class HookCallRecord:
    hook_instance: str
    service_id: str
    hook: str
    cards: Sequence[CardRecord]
    called_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    client: ClientIdentity | None = None
    patient_key: str | None = None  # keyed hash, never the patient id (PatientKeyer)
    rules_version: str | None = None
    evidence: Sequence[EvidenceEntry] = ()
    data_problems: Sequence[ProblemEntry] = ()
    profile: ProfileRecord | None = None  # cytokine profile page
    trigger: EhrTrigger | None = None

    @classmethod
    def for_cards(cls, cards: Sequence[Card], **fields: Any) -> HookCallRecord:
        records = [record for card in cards if (record := CardRecord.from_card(card))]
        return cls(cards=records, **fields)


def dedupe_key(item: FeedbackItem) -> str:
    """Identity of a feedback item: the same item sent twice has the same key.

    Over card, outcome, outcomeTimestamp, accepted suggestion ids (as a set) and the override
    reason coding; the free-text comment is left out, so a resend with an edited comment is still
    the same clinician action (the first one stored wins).
    """
    reason = item.overrideReason.reason if item.overrideReason else None
    parts = [
        item.card,
        item.outcome,
        item.outcomeTimestamp.astimezone(UTC).isoformat(timespec="microseconds"),
        ",".join(sorted({s.id for s in item.acceptedSuggestions or ()})),
        (reason.system or "") if reason else "",
        reason.code if reason else "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
