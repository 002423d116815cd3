"""Builders for cards, responses, audit records and feedback, and readers of what was stored.

Reusable by any test that drives the store, directly or through the real endpoints.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from cds_service.hooks.feedback import FeedbackItem
from cds_service.hooks.response import Card, CdsResponse, Coding, Source, Suggestion
from cds_service.observability.metrics import metrics
from cds_service.store import ClientIdentity, EvidenceEntry, HookCallRecord
from cds_service.store.database import READ_ONLY
from cds_service.store.schema import cards, feedback, hook_calls

TOPIC_SYSTEM = "https://cytokine-cds.example.org/card-types"
SERVICE_ID = "cytokine-storm-patient-view"

EVIDENCE: list[EvidenceEntry] = [
    {
        "analyte": "IL-6",
        "value": 212.5,
        "unit": "pg/mL",
        "comparator": None,
        "effective": "2026-11-20T06:10:00+00:00",
        "source": "prefetch:cytokines",
    },
    {
        "analyte": "ferritin",
        "value": 10000,
        "unit": "ng/mL",
        "comparator": ">",
        "effective": "2026-11-20T05:00:00+00:00",
        "source": "fhir",
    },
]


def make_card(
    topic: str = "il6driven",
    indicator: str = "warning",
    suggestions: int = 1,
    card_uuid: str | None = None,
) -> Card:
    """A spec-valid card with a uuid, a topic and `suggestions` suggestions (each with a uuid)."""
    suggestion_list = [
        Suggestion(label=f"Consider option {n + 1}", uuid=str(uuid.uuid4()))
        for n in range(suggestions)
    ]
    return Card(
        uuid=card_uuid or str(uuid.uuid4()),
        summary=f"Pattern consistent with {topic}",
        indicator=indicator,  # type: ignore[arg-type]
        source=Source(label="Cytokine CDS", topic=Coding(system=TOPIC_SYSTEM, code=topic)),
        suggestions=suggestion_list or None,
        selectionBehavior="any" if suggestion_list else None,
    )


def make_response(*topics: str) -> CdsResponse:
    return CdsResponse(cards=[make_card(topic) for topic in topics])


def hook_call_record(card_list: list[Card], **fields: Any) -> HookCallRecord:
    values: dict[str, Any] = {
        "hook_instance": str(uuid.uuid4()),
        "service_id": SERVICE_ID,
        "hook": "patient-view",
        "client": ClientIdentity(iss="https://ehr.example.org", tenant="ward-7"),
        "patient_key": "0" * 64,
        "rules_version": "rules-2026.11",
        "evidence": EVIDENCE,
    }
    values.update(fields)
    return HookCallRecord.for_cards(card_list, **values)


def feedback_json(
    card: Card | str,
    outcome: str = "accepted",
    *,
    at: datetime | str = "2026-11-20T08:31:02.518Z",
    accepted: list[str] | None = None,
    reason: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """One feedback item as a client sends it; accepts the card's first suggestion by default."""
    card_uuid = card if isinstance(card, str) else card.uuid
    item: dict[str, Any] = {
        "card": card_uuid,
        "outcome": outcome,
        "outcomeTimestamp": at if isinstance(at, str) else at.isoformat(),
    }
    if outcome == "accepted":
        if accepted is None:
            assert not isinstance(card, str) and card.suggestions
            accepted = [str(card.suggestions[0].uuid)]
        item["acceptedSuggestions"] = [{"id": s} for s in accepted]
    override: dict[str, Any] = {}
    if reason:
        override["reason"] = {"system": "https://cytokine-cds.example.org/override", "code": reason}
    if comment:
        override["userComment"] = comment
    if override:
        item["overrideReason"] = override
    return item


def feedback_item(card: Card | str, outcome: str = "accepted", **kwargs: Any) -> FeedbackItem:
    return FeedbackItem.model_validate(feedback_json(card, outcome, **kwargs))


def stored(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        return [dict(row._mapping) for row in connection.execute(select(table))]


def stored_hook_calls(engine: Engine) -> list[dict[str, Any]]:
    return stored(engine, hook_calls)


def stored_cards(engine: Engine) -> list[dict[str, Any]]:
    return stored(engine, cards)


def stored_feedback(engine: Engine) -> list[dict[str, Any]]:
    return stored(engine, feedback)


def now() -> datetime:
    return datetime.now(UTC)


_STORE_EVENTS = ("audit_writes", "audit_write_failures", "feedback_write_failures")


class StoreEvents:
    """The audit store's Prometheus counters (per process), counted from when this was made."""

    def __init__(self) -> None:
        self._start = self._now()

    @staticmethod
    def _now() -> dict[str, float]:
        registry = metrics().registry
        return {
            name: registry.get_sample_value(f"cytokine_cds_{name}_total") or 0.0
            for name in _STORE_EVENTS
        }

    def counted(self) -> dict[str, float]:
        """Events since this was made, by counter name (zero counts left out)."""
        now = self._now()
        counted = {name: now[name] - self._start[name] for name in _STORE_EVENTS}
        return {name: count for name, count in counted.items() if count}
