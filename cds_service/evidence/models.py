"""The evidence contract: what the rules read about a patient's labs.

Everything here is a frozen pydantic model built by `build_evidence`; values are already in the
canonical unit of their analyte's unit family (see catalog.yaml).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, SerializationInfo, field_serializer

Comparator = Literal["<", "<=", ">", ">="]
UsableStatus = Literal["final", "amended", "corrected", "preliminary"]
Trend = Literal["rising", "falling", "stable", "unknown"]
# Serialization context key: dump lab values without their `source` (a resource id, which some
# EHRs build from record numbers), e.g. `model_dump(context={WITHOUT_SOURCES: True})`.
WITHOUT_SOURCES = "without_sources"


class ProblemCode(StrEnum):
    """Machine codes of data problems (DataProblem.code)."""

    UNIT_NOT_CONVERTIBLE = "unit-not-convertible"  # unit is not an accepted variant
    UNIT_MISSING = "unit-missing"  # numeric value without any unit to read
    UNIT_AMBIGUOUS = "unit-ambiguous"  # unit fits two unit families of the analyte
    UNKNOWN_CODE = "unknown-code"  # Observation code not in the catalog (informational)
    STATUS_IGNORED = "status-ignored"  # cancelled, entered-in-error, registered, ...
    NO_VALUE = "no-value"  # no value[x], or a non-numeric one
    DATA_ABSENT = "data-absent"  # dataAbsentReason given instead of a value
    UNPARSEABLE_VALUE = "unparseable-value"  # valueString that is not a number
    IMPLAUSIBLE_VALUE = "implausible-value"  # outside the analyte's plausible range: an error
    MALFORMED = "malformed"  # wrong JSON types or shapes
    NO_EFFECTIVE_TIME = "no-effective-time"  # neither effective[x] nor issued
    TIME_WITHOUT_ZONE = "time-without-zone"  # a time of day without a zone, read as UTC
    FUTURE_DATED = "future-dated"  # effective time after as_of
    REFERENCE_RANGE_NOT_CONVERTIBLE = "reference-range-not-convertible"
    UNRESOLVED_RESULT = "unresolved-result"  # DiagnosticReport.result not in the input
    OPERATION_OUTCOME = "operation-outcome"  # an OperationOutcome (issue) was received
    INCOMPLETE_BUNDLE = "incomplete-bundle"  # searchset Bundle with a `next` link
    CONFLICTING_COPIES = "conflicting-copies"  # one id, two contents, neither marked newer


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabValue(_Frozen):
    """One result of one analyte, converted to the canonical unit of its family."""

    analyte: str
    value: float
    comparator: Comparator | None
    upper: float | None  # only for a valueRange with both bounds (value=low, comparator ">=")
    unit: str
    family: str
    effective: datetime
    status: UsableStatus
    reference_low: float | None
    reference_high: float | None
    interpretation: tuple[str, ...]
    source: str  # "Observation/<id>"; contained: "DiagnosticReport/<id>#<contained id>"
    component: str | None = None  # "system|code" when read from Observation.component
    code: str = ""  # "system|code" that matched the catalog
    reported: str = ""  # as reported, for display, e.g. "<5 pg/mL"

    @field_serializer("source")
    def _dump_source(self, source: str, info: SerializationInfo) -> str:
        return "" if info.context and info.context.get(WITHOUT_SOURCES) else source


class AnalyteEvidence(_Frozen):
    analyte: str
    latest: LabValue
    previous: LabValue | None  # most recent strictly earlier result of the same family
    trend: Trend
    history: tuple[LabValue, ...]  # newest first, all families
    fresh: bool
    freshness_hours: float


class DataProblem(_Frozen):
    code: str
    reason: str  # human text, never patient identifiers or free text from the record
    reference: str | None = None  # "Observation/<id>" or "prefetch:<key>"
    analyte: str | None = None


class Evidence(_Frozen):
    as_of: datetime
    analytes: dict[str, AnalyteEvidence]
    problems: tuple[DataProblem, ...]

    def get(self, analyte: str) -> AnalyteEvidence | None:
        return self.analytes.get(analyte)

    def fresh(self, analyte: str) -> LabValue | None:
        """The latest value when it is within the analyte's freshness window, else None."""
        found = self.analytes.get(analyte)
        return found.latest if found is not None and found.fresh else None
