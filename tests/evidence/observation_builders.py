"""Small builders of FHIR JSON for table-driven tests (synthetic, one field varied at a time).

Patient fixtures live in fixtures/; these only build the single Observations a test varies.
"""

from datetime import UTC, datetime
from typing import Any

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LATEST = "2026-11-20T06:00:00Z"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://cytokine-cds.github.io/fhir/CodeSystem/lab"

CODES: dict[str, tuple[str, str]] = {
    "il6": (LOINC, "26881-3"),
    "il1b": (LOINC, "13629-1"),
    "il18": (LOCAL, "il-18"),
    "ifng": (LOINC, "27415-9"),
    "cxcl9": (LOINC, "98115-9"),
    "sil2r": (LOINC, "76039-7"),
    "sil2r_u": (LOCAL, "sil2r-u"),
    "tnfa": (LOINC, "3074-2"),
    "il10": (LOINC, "26848-2"),
    "ferritin": (LOINC, "2276-4"),
    "crp": (LOINC, "1988-5"),
    "pct": (LOINC, "33959-8"),
    "lymphocytes": (LOINC, "731-0"),
    "neutrophils": (LOINC, "751-8"),
    "platelets": (LOINC, "777-3"),
    "hemoglobin": (LOINC, "718-7"),
    "fibrinogen": (LOINC, "3255-7"),
    "triglycerides": (LOINC, "2571-8"),
    "ast": (LOINC, "1920-8"),
    "alt": (LOINC, "1742-6"),
    "ldh": (LOINC, "2532-0"),
    "ddimer": (LOINC, "48065-7"),
    "temperature": (LOINC, "8310-5"),
    "mhla_dr": (LOCAL, "mhla-dr"),
    "spo2": (LOINC, "59408-5"),
}


def code(key: str) -> dict[str, Any]:
    system, value = CODES[key]
    return {"coding": [{"system": system, "code": value}]}


def quantity(
    value: Any, unit: str | None, *, ucum: bool = True, comparator: str | None = None
) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if unit is not None:
        q["unit"] = unit
        if ucum:
            q["system"] = UCUM
            q["code"] = unit
    if comparator is not None:
        q["comparator"] = comparator
    return q


def observation(
    analyte: str,
    *,
    id: str = "obs-1",
    status: str = "final",
    when: str | None = LATEST,
    **fields: Any,
) -> dict[str, Any]:
    """An Observation of a catalog analyte (key of CODES); `fields` adds value[x] and the rest."""
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id,
        "status": status,
        "code": code(analyte),
    }
    if when is not None:
        obs["effectiveDateTime"] = when
    obs.update(fields)
    return obs


def reference_range(
    low: float | None = None, high: float | None = None, unit: str | None = None
) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {}
    if low is not None:
        entry["low"] = quantity(low, unit)
    if high is not None:
        entry["high"] = quantity(high, unit)
    return [entry]


def searchset(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle
