"""Lab evidence layer: FHIR Observations -> typed, unit-normalised evidence for the rules.

Knows nothing of Flask, cards or rules. Load the catalog once at start-up and reuse it.
"""

from .build import build_evidence
from .catalog import AnalyteEntry, Catalog, CodeEntry, TrendRule, UnitFamily, load_catalog
from .catalog_schema import CatalogError
from .models import (
    AnalyteEvidence,
    Comparator,
    DataProblem,
    Evidence,
    LabValue,
    ProblemCode,
    Trend,
    UsableStatus,
)

__all__ = [
    "AnalyteEntry",
    "AnalyteEvidence",
    "Catalog",
    "CatalogError",
    "CodeEntry",
    "Comparator",
    "DataProblem",
    "Evidence",
    "LabValue",
    "ProblemCode",
    "Trend",
    "TrendRule",
    "UnitFamily",
    "UsableStatus",
    "build_evidence",
    "load_catalog",
]
