"""The governance report: per card type, how often it was shown, accepted and overridden.

Counting rules (also in the README):
- shown: cards served (one per card uuid) whose hook call is on or after --since.
- Each card counts once, in at most one outcome: `accepted` if any of its feedback items is
  "accepted" (the clinician took a suggestion, even if a later click dismissed the card);
  otherwise `overridden` if any item is "overridden"; otherwise it got no feedback.
- override_reasons: for each overridden card, the reason code of its latest override (by
  outcomeTimestamp); "unspecified" when the clinician gave no coded reason. They add up to
  `overridden`.
- acceptance_rate = accepted / shown, rounded to 3 decimals.
- Feedback whose card is unknown (orphan) has no card type and is counted apart.
- By trigger (`--by trigger`): the same counts per EHR trigger (Epic's trigger action and
  criteria id, from the request's extension) instead of per card type.
- Epic's own override reasons (not the card's) count as `epic:<reasonCategory>`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, exists, func, or_, select

from cds_service.hooks.feedback import EPIC_REASON_SYSTEM
from cds_service.store.database import READ_ONLY
from cds_service.store.schema import cards, feedback, hook_calls

NO_TOPIC = "(no topic)"
NO_REASON = "unspecified"
FORMATS = ("table", "json", "csv")
GROUPINGS = ("topic", "trigger")
NO_TRIGGER = "(none sent)"


@dataclass
class TopicSummary:
    topic: str
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    override_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def acceptance_rate(self) -> float:
        return round(self.accepted / self.shown, 3) if self.shown else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "shown": self.shown,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "override_reasons": dict(sorted(self.override_reasons.items())),
            "acceptance_rate": self.acceptance_rate,
        }


@dataclass
class Report:
    topics: list[TopicSummary]  # one per card type, or per EHR trigger (by="trigger")
    orphan_feedback: int
    by: str = "topic"

    def to_json(self) -> list[dict[str, Any]]:
        rows = [topic.to_json() for topic in self.topics]
        if self.by != "topic":
            rows = [{self.by: row.pop("topic"), **row} for row in rows]
        return rows


@dataclass
class _CardState:
    topic: str
    accepted: bool = False
    latest_override: tuple[datetime, str] | None = None


def _shown() -> ColumnElement[bool]:
    """A card counts as shown unless the client sent the same call again (same service,
    hookInstance, client and patient: a retry after a timeout) and got a newer answer: it shows
    the last answer it received. A card of an earlier answer that got feedback was shown all
    the same. Another client or patient with that hookInstance (a client that reuses one) is
    another call."""
    newer = hook_calls.alias("newer")
    answered_again = exists().where(
        and_(
            newer.c.hook_instance == hook_calls.c.hook_instance,
            newer.c.service_id == hook_calls.c.service_id,
            newer.c.client_iss.is_not_distinct_from(hook_calls.c.client_iss),
            newer.c.client_tenant.is_not_distinct_from(hook_calls.c.client_tenant),
            newer.c.patient_key.is_not_distinct_from(hook_calls.c.patient_key),
            newer.c.id > hook_calls.c.id,
        )
    )
    given = feedback.alias("given")
    has_feedback = exists().where(given.c.card_uuid == cards.c.uuid)
    return or_(~answered_again, has_feedback)


def count_cards(engine: Engine, since: datetime | None = None) -> int:
    query = select(func.count()).select_from(cards.join(hook_calls)).where(_shown())
    if since is not None:
        query = query.where(hook_calls.c.called_at >= since)
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        return int(connection.scalar(query) or 0)


def build_report(
    engine: Engine,
    since: datetime | None = None,
    progress: Callable[[int], object] | None = None,
    by: str = "topic",
) -> Report:
    """Scan cards (with their feedback) in one streamed, ordered pass; `progress(n)` per card.

    `by`: "topic" (per card type) or "trigger" (per EHR trigger action and criteria id)."""
    group = (
        (cards.c.topic_code, cards.c.topic_code)
        if by == "topic"
        else (hook_calls.c.trigger_action, hook_calls.c.criteria_id)
    )
    query = (
        select(
            cards.c.uuid,
            *group,
            feedback.c.outcome,
            feedback.c.outcome_at,
            feedback.c.override_reason_system,
            feedback.c.override_reason_code,
        )
        .select_from(
            cards.join(hook_calls).outerjoin(feedback, feedback.c.card_uuid == cards.c.uuid)
        )
        .where(_shown())
        .order_by(cards.c.uuid)
    )
    if since is not None:
        query = query.where(hook_calls.c.called_at >= since)
    topics: dict[str, TopicSummary] = {}
    options = {READ_ONLY: True, "stream_results": True, "yield_per": 2000}
    with engine.connect().execution_options(**options) as connection:
        for state in _cards(connection.execute(query), progress, by):
            summary = topics.setdefault(state.topic, TopicSummary(state.topic))
            summary.shown += 1
            if state.accepted:
                summary.accepted += 1
            elif state.latest_override is not None:
                summary.overridden += 1
                reason = state.latest_override[1]
                summary.override_reasons[reason] = summary.override_reasons.get(reason, 0) + 1
        orphans = connection.scalar(
            select(func.count()).select_from(feedback).where(feedback.c.orphan.is_(True))
        )
    return Report(
        topics=sorted(topics.values(), key=lambda t: t.topic),
        orphan_feedback=orphans or 0,
        by=by,
    )


def _group_name(by: str, first: str | None, second: str | None) -> str:
    if by == "topic":
        return first or NO_TOPIC
    if first is None and second is None:
        return NO_TRIGGER
    return f"action {first or '-'}, criteria {second or '-'}"


def _reason_name(system: str | None, code: str | None) -> str:
    if code is None:
        return NO_REASON
    return f"epic:{code}" if system == EPIC_REASON_SYSTEM else code


def _cards(
    rows: Any, progress: Callable[[int], object] | None, by: str = "topic"
) -> Iterator[_CardState]:
    """Fold the card x feedback rows (ordered by card uuid) into one state per card."""
    current_uuid: str | None = None
    state: _CardState | None = None
    for uuid, first, second, outcome, outcome_at, system, reason in rows:
        if uuid != current_uuid:
            if state is not None:
                yield state
                if progress:
                    progress(1)
            current_uuid, state = uuid, _CardState(_group_name(by, first, second))
        assert state is not None
        if outcome == "accepted":
            state.accepted = True
        elif outcome == "overridden":
            candidate = (outcome_at, _reason_name(system, reason))
            if state.latest_override is None or candidate[0] >= state.latest_override[0]:
                state.latest_override = candidate
    if state is not None:
        yield state
        if progress:
            progress(1)


COLUMNS = ("topic", "shown", "accepted", "overridden", "acceptance_rate", "override_reasons")


def _reasons_text(reasons: dict[str, int]) -> str:
    return "; ".join(f"{code}={count}" for code, count in sorted(reasons.items()))


def as_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((report.by, *COLUMNS[1:]))
    for t in report.topics:
        writer.writerow(
            [
                t.topic,
                t.shown,
                t.accepted,
                t.overridden,
                f"{t.acceptance_rate:.3f}",
                _reasons_text(t.override_reasons),
            ]
        )
    return out.getvalue()


def as_table(report: Report) -> str:
    first = "card type" if report.by == "topic" else "EHR trigger"
    headers = (first, "shown", "accepted", "overridden", "acceptance", "override reasons")
    rows = [
        (
            t.topic,
            str(t.shown),
            str(t.accepted),
            str(t.overridden),
            f"{t.acceptance_rate:.3f}",
            _reasons_text(t.override_reasons) or "-",
        )
        for t in report.topics
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    numeric = {1, 2, 3, 4}

    def line(cells: tuple[str, ...]) -> str:
        parts = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    lines = [line(headers), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in rows] or ["(no cards served in this period)"]
    if report.orphan_feedback:
        lines.append(
            f"{report.orphan_feedback} feedback item(s) name a card this store does not know "
            "(orphans) and are not counted above."
        )
    return "\n".join(lines) + "\n"
