"""One patient of a census: its export lines -> the worklist row (or nothing to report).

The cards are those a patient-view hook call returns for the same data, from the same decision;
only their uuids differ: here they are derived from the patient and the card's content, so the
same export screened at the same time gives the same output byte for byte, on either engine.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from cds_service.evidence import DataProblem, ProblemCode
from cds_service.screening.decide import KnowledgeFiles, ScreenDecision, decide_patient
from cds_service.screening.source import Line

# Urgency of a row: its most urgent card. Sorted first; then by patient id.
URGENCY = ("critical", "warning", "info")
_UUID_NAMESPACE = uuid.UUID("5b1f7f7e-3c1e-4d0a-9a53-8f2b3c6f0d19")  # cytokine-cds screening


@dataclass
class Tally:
    """Counts of one screening run (or part of it); parts are added up."""

    patients: int = 0
    listed: int = 0
    lines: int = 0
    cards: Counter[str] = field(default_factory=Counter)  # card type -> patients
    problems: Counter[str] = field(default_factory=Counter)  # problem code -> occurrences
    patients_with_problems: int = 0
    malformed_lines: int = 0
    unattributed: int = 0  # lines naming no patient (not screened)
    unattributed_examples: list[str] = field(default_factory=list)  # "file line N"

    def add(self, other: Tally) -> None:
        self.patients += other.patients
        self.listed += other.listed
        self.lines += other.lines
        self.cards.update(other.cards)
        self.problems.update(other.problems)
        self.patients_with_problems += other.patients_with_problems
        self.malformed_lines += other.malformed_lines
        self.unattributed += other.unattributed
        room = 5 - len(self.unattributed_examples)
        self.unattributed_examples += other.unattributed_examples[: max(room, 0)]

    def note_unattributed(self, line: Line) -> None:
        self.unattributed += 1
        if line.resource is None:
            self.malformed_lines += 1
        if len(self.unattributed_examples) < 5:
            self.unattributed_examples.append(line.where)

    def to_json(self) -> dict[str, Any]:
        return {
            "patients": self.patients,
            "listed": self.listed,
            "lines": self.lines,
            "cards": dict(sorted(self.cards.items())),
            "problems": dict(sorted(self.problems.items())),
            "patients_with_problems": self.patients_with_problems,
            "malformed_lines": self.malformed_lines,
            "unattributed": self.unattributed,
        }


def sort_key(row: dict[str, Any]) -> tuple[int, str]:
    return URGENCY.index(row["urgency"]), row["patient"]


def screen_patient(
    knowledge: KnowledgeFiles, patient_id: str, lines: Iterable[Line], as_of: datetime, tally: Tally
) -> dict[str, Any] | None:
    """The worklist row of one patient, or None when no card is due. Counts into `tally`."""
    ordered = sorted(lines, key=lambda line: (line.file, line.number))  # engine-independent
    resources = [line.resource for line in ordered if line.resource is not None]
    problems = tuple(_malformed(line) for line in ordered if line.resource is None)
    decision = decide_patient(knowledge, patient_id, resources, problems, as_of)
    tally.patients += 1
    tally.lines += len(ordered)
    tally.malformed_lines += len(problems)
    if decision.problems:
        tally.patients_with_problems += 1
        tally.problems.update(p.code for p in decision.problems)
    if not decision.cards:
        return None
    tally.listed += 1
    cards = _with_stable_uuids(patient_id, decision.cards)
    tally.cards.update(set(decision.card_types))
    return _row(patient_id, decision, cards)


def encode_row(row: dict[str, Any]) -> bytes:
    """One NDJSON line of the output (keys in a fixed order; no trailing newline)."""
    return orjson.dumps(row)


def _row(patient_id: str, decision: ScreenDecision, cards: list[dict[str, Any]]) -> dict[str, Any]:
    assessment = decision.assessment
    return {
        "patient": patient_id,
        "urgency": min((card["indicator"] for card in cards), key=URGENCY.index),
        "card_types": list(decision.card_types),
        "pattern": assessment.subtype,
        "decision": assessment.decision,
        "setting": decision.setting,
        "rationale": assessment.rationale,
        "scores": decision.scores,
        "decisive_values": decision.decisive_values,
        "missing": list(assessment.missing_groups),
        "problems": [p.model_dump(mode="json", exclude_none=True) for p in decision.problems],
        "rules_version": assessment.rules_version,
        "evaluated_at": assessment.evaluated_at.isoformat().replace("+00:00", "Z"),
        "cards": cards,
    }


def _malformed(line: Line) -> DataProblem:
    return DataProblem(
        code=ProblemCode.MALFORMED,
        reason=f"{line.where} is not a FHIR resource in JSON; it was skipped",
        reference=f"{line.file}:{line.number}",
    )


def _with_stable_uuids(patient_id: str, cards: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards with uuids derived from the patient and the card's content (name-based, UUIDv5)."""
    stable = []
    for card in cards:
        content = {k: v for k, v in card.items() if k != "uuid"}
        suggestions = [
            {k: v for k, v in s.items() if k != "uuid"} for s in content.get("suggestions", [])
        ]
        if suggestions:
            content["suggestions"] = suggestions
        canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
        card_uuid = uuid.uuid5(_UUID_NAMESPACE, f"{patient_id}\n{canonical}")
        renamed = dict(card)
        if "uuid" in card:
            renamed["uuid"] = str(card_uuid)
        if suggestions:
            renamed["suggestions"] = [
                {**s, "uuid": str(uuid.uuid5(card_uuid, str(i)))} if "uuid" in s else s
                for i, s in enumerate(card["suggestions"])
            ]
        stable.append(renamed)
    return stable
