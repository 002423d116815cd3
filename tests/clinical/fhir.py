"""FHIR R4 resources for synthetic patients: labs, vital signs, conditions, infusions, drugs.

Times are hours before FIXTURE_TIME (cds_service.demo), so `hook_request(now=...)` moves a chart
to today as the other fixtures are moved.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cds_service.demo import FIXTURE_TIME

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
LOCAL_LAB = "https://cytokine-cds.github.io/fhir/CodeSystem/lab"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
ORPHA = "http://www.orpha.net"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_NAMESPACE = uuid.UUID("6f1d3c9e-2b8a-4f57-9a1e-0c2d5b7e8f90")

# analyte -> (system, code, display, UCUM unit)
LABS: dict[str, tuple[str, str, str, str]] = {
    "il6": (LOINC, "26881-3", "Interleukin 6 [Mass/volume] in Serum or Plasma", "pg/mL"),
    "ifng": (LOINC, "27415-9", "Interferon gamma [Mass/volume] in Serum or Plasma", "pg/mL"),
    "il18": (LOCAL_LAB, "il-18", "Interleukin 18 [Mass/volume] in Serum or Plasma", "pg/mL"),
    "il1b": (LOINC, "13629-1", "Interleukin 1 beta [Mass/volume] in Serum or Plasma", "pg/mL"),
    "cxcl9": (LOINC, "98115-9", "CXCL9 [Mass/volume] in Plasma", "pg/mL"),
    "il10": (LOINC, "26848-2", "Interleukin 10 [Mass/volume] in Serum or Plasma", "pg/mL"),
    "sil2r": (LOCAL_LAB, "sil2r-u", "Soluble interleukin 2 receptor [Units/volume]", "U/mL"),
    "ferritin": (LOINC, "2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "ng/mL"),
    "crp": (LOINC, "1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L"),
    "pct": (LOINC, "33959-8", "Procalcitonin [Mass/volume] in Serum or Plasma", "ng/mL"),
    "lymphocytes": (LOINC, "731-0", "Lymphocytes [#/volume] in Blood", "10*9/L"),
    "neutrophils": (LOINC, "751-8", "Neutrophils [#/volume] in Blood", "10*9/L"),
    "platelets": (LOINC, "777-3", "Platelets [#/volume] in Blood", "10*9/L"),
    "hemoglobin": (LOINC, "718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL"),
    "fibrinogen": (LOINC, "3255-7", "Fibrinogen [Mass/volume] in Platelet poor plasma", "mg/dL"),
    "triglycerides": (LOINC, "2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL"),
    "ast": (LOINC, "1920-8", "Aspartate aminotransferase [Enzymatic activity/volume]", "U/L"),
    "alt": (LOINC, "1742-6", "Alanine aminotransferase [Enzymatic activity/volume]", "U/L"),
    "ldh": (LOINC, "2532-0", "Lactate dehydrogenase [Enzymatic activity/volume]", "U/L"),
    "ddimer": (LOINC, "48065-7", "Fibrin D-dimer FEU [Mass/volume]", "ug/mL{FEU}"),
    "temperature": (LOINC, "8310-5", "Body temperature", "Cel"),
    "spo2": (LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "systolic": (LOINC, "8480-6", "Systolic blood pressure", "mm[Hg]"),
    "mhla_dr": (LOCAL_LAB, "mhla-dr", "Monocyte HLA-DR expression", "{molecules}/{cell}"),
    "body_weight": (LOINC, "29463-7", "Body weight", "kg"),
}
_VITALS = {"temperature", "spo2", "systolic", "body_weight"}


def at(hours_ago: float) -> str:
    return (FIXTURE_TIME - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


@dataclass
class Chart:
    """One synthetic patient: resources added by the helpers, each with a stable id."""

    patient: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    birth_date: str | None = "1968-03-14"  # None: the Patient carries no birthDate

    def aged(self, years: int) -> Chart:
        """A patient `years` old today. Birth dates are plain dates, which the hook request
        does not move with the chart's times, so they are counted from today: the birthday
        falls five months back, so the whole years hold whatever day the chart is sent."""
        today = date.today()
        self.birth_date = (
            date(today.year - years, today.month, 1) - timedelta(days=150)
        ).isoformat()
        return self

    def age_unknown(self) -> Chart:
        self.birth_date = None
        return self

    def _add(self, resource_type: str, body: dict[str, Any]) -> Chart:
        resource_id = f"{self.patient}-{resource_type.lower()}-{len(self.resources) + 1}"
        body = {"resourceType": resource_type, "id": resource_id, **body}
        if resource_type != "Patient":
            key = "patient" if resource_type == "AllergyIntolerance" else "subject"
            body[key] = {"reference": f"Patient/{self.patient}"}
        self.resources.append(body)
        return self

    def lab(
        self,
        analyte: str,
        value: float | str,
        hours_ago: float = 2,
        *,
        unit: str | None = None,
        high: float | None = None,
    ) -> Chart:
        system, code, display, default_unit = LABS[analyte]
        unit = default_unit if unit is None else unit
        body: dict[str, Any] = {
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs" if analyte in _VITALS else "laboratory",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": system, "code": code, "display": display}]},
            "effectiveDateTime": at(hours_ago),
        }
        if isinstance(value, str):
            body["valueString"] = value  # as a lab sends ">5000" without a unit
        else:
            quantity: dict[str, Any] = {"value": value}
            if unit:
                quantity.update(unit=unit, system=UCUM, code=unit)
            body["valueQuantity"] = quantity
        if high is not None:
            body["referenceRange"] = [
                {"high": {"value": high, "unit": unit, "system": UCUM, "code": unit}}
            ]
        return self._add("Observation", body)

    def labs(self, hours_ago: float = 2, **values: float) -> Chart:
        for analyte, value in values.items():
            self.lab(analyte, value, hours_ago)
        return self

    def vitals(
        self,
        *,
        temperature: float | None = None,
        spo2: float | None = None,
        oxygen_flow: float | None = None,
        systolic: float | None = None,
        hours_ago: float = 1,
    ) -> Chart:
        """The bedside set taken together, added in this order: temperature, SpO2, oxygen flow
        (L/min), systolic pressure; the ones not given are left out."""
        if temperature is not None:
            self.lab("temperature", temperature, hours_ago)
        if spo2 is not None:
            self.lab("spo2", spo2, hours_ago)
        if oxygen_flow is not None:
            self.oxygen_flow(oxygen_flow, hours_ago)
        if systolic is not None:
            self.lab("systolic", systolic, hours_ago)
        return self

    def oxygen_flow(self, litres_per_min: float, hours_ago: float = 1) -> Chart:
        return self._add(
            "Observation",
            {
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [
                        {"system": LOINC, "code": "3151-8", "display": "Inhaled oxygen flow rate"}
                    ]
                },
                "effectiveDateTime": at(hours_ago),
                "valueQuantity": {
                    "value": litres_per_min,
                    "unit": "L/min",
                    "system": UCUM,
                    "code": "L/min",
                },
            },
        )

    def fio2(self, percent: float, hours_ago: float = 1) -> Chart:
        return self._add(
            "Observation",
            {
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "3150-0"}]},
                "effectiveDateTime": at(hours_ago),
                "valueQuantity": {"value": percent, "unit": "%", "system": UCUM, "code": "%"},
            },
        )

    def oxygen_device(self, text: str, hours_ago: float = 1) -> Chart:
        """The respiratory support device as text ("CPAP", "nasal cannula")."""
        return self._add(
            "Observation",
            {
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "107117-4"}]},
                "effectiveDateTime": at(hours_ago),
                "valueCodeableConcept": {"text": text},
            },
        )

    def condition(
        self,
        system: str,
        code: str,
        display: str,
        days_ago: float = 2,
        *,
        verification: str = "confirmed",
    ) -> Chart:
        return self._add(
            "Condition",
            {
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": verification,
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "problem-list-item",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [{"system": system, "code": code, "display": display}],
                    "text": display,
                },
                "onsetDateTime": at(days_ago * 24),
                "recordedDate": at(days_ago * 24),
            },
        )

    def car_t_infusion(
        self,
        days_ago: float,
        code: str = "XW033H7",
        product: str = "Yescarta",
        ingredient: str = "axicabtagene ciloleucel",
    ) -> Chart:
        display = f"Introduction of {product} ({ingredient}) CAR-T cells into peripheral vein"
        return self._add(
            "Procedure",
            {
                "status": "completed",
                "code": {
                    "coding": [{"system": ICD10PCS, "code": code, "display": display}],
                    "text": display,
                },
                "performedDateTime": at(days_ago * 24),
            },
        )

    def given(
        self,
        drug: str,
        rxnorm: str,
        hours_ago: float,
        *,
        dose_mg: float | None = None,
        status: str = "completed",
        unit: str = "mg",
    ) -> Chart:
        """`dose_mg` in `unit` (mg/kg for a dose per kg)."""
        body: dict[str, Any] = {
            "status": status,
            "medicationCodeableConcept": _drug(drug, rxnorm),
            "effectiveDateTime": at(hours_ago),
        }
        if dose_mg is not None:
            body["dosage"] = {
                "dose": {"value": dose_mg, "unit": unit, "system": UCUM, "code": unit}
            }
        return self._add("MedicationAdministration", body)

    def taking(self, drug: str, rxnorm: str, hours_ago: float, *, daily_mg: float) -> Chart:
        """A MedicationStatement: a home medicine taken once a day since `hours_ago`."""
        return self._add(
            "MedicationStatement",
            {
                "status": "active",
                "medicationCodeableConcept": _drug(drug, rxnorm),
                "effectivePeriod": {"start": at(hours_ago)},
                "dosage": [
                    {
                        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                        "doseAndRate": [
                            {
                                "doseQuantity": {
                                    "value": daily_mg,
                                    "unit": "mg",
                                    "system": UCUM,
                                    "code": "mg",
                                }
                            }
                        ],
                    }
                ],
            },
        )

    def ordered(
        self, drug: str, rxnorm: str, hours_ago: float, *, as_needed: str | None = None
    ) -> Chart:
        """An active MedicationRequest (ordered, not yet given); `as_needed`: its PRN text."""
        body: dict[str, Any] = {
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": _drug(drug, rxnorm),
            "authoredOn": at(hours_ago),
        }
        if as_needed is not None:
            body["dosageInstruction"] = [{"text": as_needed, "asNeededBoolean": True}]
        return self._add("MedicationRequest", body)

    def allergy(self, drug: str, rxnorm: str) -> Chart:
        return self._add(
            "AllergyIntolerance",
            {
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": _drug(drug, rxnorm),
            },
        )

    def bundle(self, *, gender: str = "female") -> dict[str, Any]:
        """A transaction Bundle a FHIR server (and the CDS Hooks sandbox) can load."""
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": self.patient,
            "name": [{"family": "Synthetic", "given": [self.patient]}],
            "gender": gender,
        }
        if self.birth_date is not None:
            patient["birthDate"] = self.birth_date
        return transaction([patient, *self.resources])


def _drug(name: str, rxnorm: str) -> dict[str, Any]:
    """A medication CodeableConcept: the RxNorm code, with the name as display and text."""
    return {"coding": [{"system": RXNORM, "code": rxnorm, "display": name}], "text": name}


def transaction(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(_NAMESPACE, r['resourceType'] + '/' + r['id'])}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def order(
    drug: str,
    rxnorm: str,
    *,
    dose: float | None = None,
    unit: str = "mg",
    per_day: int = 1,
    text: str | None = None,
    order_id: str | None = None,
    reason: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A draftOrders Bundle with one MedicationRequest (`reason`: its reasonCode, the
    indication)."""
    request: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": order_id or f"draft-{drug.split()[0].lower()}",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": _drug(text or drug, rxnorm),
    }
    if reason is not None:
        request["reasonCode"] = [reason]
    if dose is not None:
        request["dosageInstruction"] = [
            {
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {"doseQuantity": {"value": dose, "unit": unit, "system": UCUM, "code": unit}}
                ],
            }
        ]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": request}]}
