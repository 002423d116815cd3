"""The one call from screening into the service's decision, as a patient-view hook makes it.

Kept in one place so the screening job and the hooks can never drift apart: the knowledge is
named by its files (picklable, so each worker process loads it once), the patient's resources go
in as read, and what a worklist needs comes out beside the cards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cds_service.cards.resources import PanelCode
from cds_service.decision import HookContext, PatientRecord, decide
from cds_service.evidence import DataProblem, ProblemCode
from cds_service.knowledge import Knowledge, load_knowledge
from cds_service.rules.assessment import Assessment, MarkerResult


@dataclass(frozen=True)
class KnowledgeFiles:
    """Where the knowledge (catalog, rules, card templates) comes from; loaded once a process."""

    local_codes_file: Path | None
    rules_file: Path | None
    cards_dir: Path
    panel: PanelCode

    def load(self) -> Knowledge:
        return load_knowledge(self.local_codes_file, self.rules_file, self.cards_dir, self.panel)


@dataclass(frozen=True)
class ScreenDecision:
    assessment: Assessment
    cards: list[dict[str, Any]]  # card JSON, as in a patient-view response
    card_types: tuple[str, ...]  # the card template of each card (cards/<type>.yaml)
    problems: tuple[DataProblem, ...]
    setting: str | None
    scores: dict[str, float]
    decisive_values: list[dict[str, Any]]


def decide_patient(
    files: KnowledgeFiles,
    patient_id: str,
    resources: Sequence[dict[str, Any]],
    problems: tuple[DataProblem, ...],
    as_of: datetime,
) -> ScreenDecision:
    """`problems`: found while reading the export (malformed lines of this patient).

    Codes the catalog does not know are left out of the problems: an export holds every
    Observation of the patient (vital signs, other labs), where a hook's prefetch asks only for
    the codes the rules read.
    """
    record = PatientRecord(resources, problems)
    # No user: a screening run is nobody's chart view, so draft orders name no requester.
    context = HookContext(hook="patient-view", patient_id=patient_id)
    knowledge = files.load()
    decision = decide(knowledge, record, context, as_of)
    assessment = decision.assessment
    cards = [card.to_json() for card in decision.cards]
    setting = assessment.setting.setting if assessment.setting is not None else None
    # A score is valid in its population: list only those the applied setting names.
    shown = set(knowledge.rules.settings[setting or "unknown"].scores)
    return ScreenDecision(
        assessment=assessment,
        cards=cards,
        card_types=tuple(_card_type(knowledge, card) for card in cards),
        problems=tuple(p for p in decision.evidence.problems if p.code != ProblemCode.UNKNOWN_CODE),
        setting=setting,
        scores={
            **{axis.axis: axis.score for axis in assessment.axes if axis.elevated},
            **{s.id: s.value for s in assessment.scores if s.value is not None and s.id in shown},
        },
        decisive_values=[_value(m) for m in assessment.markers() if m.above and m.value],
    )


def _card_type(knowledge: Knowledge, card: dict[str, Any]) -> str:
    """The template a card was rendered from, known by its topic code."""
    code = str(card["source"]["topic"]["code"])
    templates = knowledge.cards.kit.templates
    return next((kind for kind, t in templates.items() if t.spec.topic.code == code), code)


def _value(marker: MarkerResult) -> dict[str, Any]:
    value = marker.value
    assert value is not None
    return {
        "marker": marker.marker,
        "label": marker.label,
        "analyte": marker.analyte,
        "value": value.value,
        "comparator": value.comparator,
        "unit": value.unit,
        "effective": value.effective.isoformat().replace("+00:00", "Z"),
        "criterion": marker.threshold_text,
    }
