"""Do the cytokine-directed drugs being ordered fit the assessed pattern? Pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cds_service.fhir.draft_orders import DraftMedication
from cds_service.rules.assessment import Assessment
from cds_service.rules.loader import Rules


class OrderFinding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["mismatch", "needs-cytokines"]
    order: str | None  # "MedicationRequest/<id>" of the draft
    drug: str  # drug id in the rules file
    drug_class: str
    recommend: str | None  # the fitting drug to suggest instead (None: none fits)
    daily_dose_prednisone_mg: float | None = None


def identify_drug(order: DraftMedication, rules: Rules) -> str | None:
    """The rules' drug id for an order: by RxNorm ingredient code, else by name in the text.

    Orders often carry a clinical-drug code (an RxNorm SCD) rather than the ingredient, so the
    ingredient or brand name in the text or display is the fallback.
    """
    for drug_id, drug in rules.drugs.items():
        if drug.rxnorm in order.rxnorm_codes:
            return drug_id
    text = " ".join(order.names).lower()
    for drug_id, drug in rules.drugs.items():
        if any(re.search(rf"\b{re.escape(name.lower())}\b", text) for name in drug.names):
            return drug_id
    return None


def judge_orders(
    orders: Iterable[DraftMedication], assessment: Assessment, rules: Rules
) -> list[OrderFinding]:
    findings = []
    for order in orders:
        drug_id = identify_drug(order, rules)
        if drug_id is None:
            continue
        drug = rules.drugs[drug_id]
        steroid_mg = None
        if drug.class_ == "corticosteroid":
            if order.daily_dose_mg is None or drug.prednisone_equivalent is None:
                continue  # dose unreadable: not judged (see rules parameter rationale)
            steroid_mg = order.daily_dose_mg * drug.prednisone_equivalent
            if steroid_mg <= rules.high_dose_steroid_mg:
                continue  # not a high dose: not cytokine-directed in the sense of these rules
        finding = _judge(order, drug_id, drug.class_, assessment, rules)
        if finding is not None:
            findings.append(finding.model_copy(update={"daily_dose_prednisone_mg": steroid_mg}))
    return findings


def _judge(
    order: DraftMedication, drug_id: str, drug_class: str, assessment: Assessment, rules: Rules
) -> OrderFinding | None:
    subtype = assessment.subtype
    if subtype is None or subtype == "multiplex-assay-needed":
        if assessment.missing_groups:
            return OrderFinding(
                kind="needs-cytokines",
                order=order.reference,
                drug=drug_id,
                drug_class=drug_class,
                recommend=None,
            )
        return None  # cytokines measured and none elevated: no pattern to judge the order by
    treatment = rules.treatments[subtype]
    fitting: set[str] = set(treatment.fitting)
    if treatment.fitting_from_elevated_axes:
        fitting |= {_AXIS_CLASS[axis.axis] for axis in assessment.elevated_axes}
    if drug_class in fitting:
        return None
    return OrderFinding(
        kind="mismatch",
        order=order.reference,
        drug=drug_id,
        drug_class=drug_class,
        recommend=treatment.recommend,
    )


_AXIS_CLASS = {"il1": "il1-blockade", "ifng": "ifng-blockade", "il6": "il6-blockade"}
