"""Recording a decision, after `decide`: the audit row and the profile page's data.

Never raises on a store outage (see AuditStore): an answer is never failed by its record.
"""

from __future__ import annotations

from cds_service.decision import Decision
from cds_service.knowledge import Knowledge
from cds_service.profile.snapshot import profile_record
from cds_service.rules.assessment import Assessment
from cds_service.store import (
    AuditStore,
    ClientIdentity,
    EhrTrigger,
    EvidenceEntry,
    HookCallRecord,
    ProblemEntry,
)


def record_decision(
    store: AuditStore | None,
    knowledge: Knowledge,
    decision: Decision,
    *,
    hook_instance: str,
    service_id: str,
    hook: str,
    patient_id: str,
    client: ClientIdentity | None = None,
    trigger: EhrTrigger | None = None,
) -> None:
    """Record an answer that has cards in the audit trail; answers without cards are not kept."""
    if store is None or not decision.cards:
        return
    keyer = store.patient_key
    profile = None
    if decision.profile is not None:
        profile = profile_record(
            decision.profile.assessment_id,
            decision.assessment,
            decision.evidence,
            knowledge.rules,
            knowledge.catalog,
        )
    store.record_hook_call(
        HookCallRecord.for_cards(
            decision.cards,
            hook_instance=hook_instance,
            service_id=service_id,
            hook=hook,
            client=client,
            patient_key=keyer(patient_id) if keyer else None,
            rules_version=decision.assessment.rules_version,
            evidence=evidence_summary(decision.assessment),
            data_problems=[
                ProblemEntry(code=str(p.code), reason=p.reason) for p in decision.evidence.problems
            ],
            profile=profile,
            trigger=trigger,
        )
    )


def evidence_summary(assessment: Assessment) -> list[EvidenceEntry]:
    """The values the assessment used (one per analyte and result), for the audit row.

    Resource ids are left out: some EHRs build them from record numbers, and the audit row
    must not identify the patient.
    """
    entries: dict[tuple[str, str], EvidenceEntry] = {}
    for marker in assessment.values_used():
        value = marker.value
        assert value is not None
        entries.setdefault(
            (value.analyte, value.source),
            EvidenceEntry(
                analyte=value.analyte,
                value=value.value,
                unit=value.unit,
                comparator=value.comparator,
                effective=value.effective.isoformat(),
            ),
        )
    return list(entries.values())
