"""build_evidence: FHIR resources (as plain dicts) -> typed Evidence for the rules."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from .catalog import Catalog
from .collect import collect_observations
from .models import DataProblem, Evidence, LabValue, ProblemCode
from .observations import ObservationReader
from .summary import summarize

logger = logging.getLogger(__name__)


def build_evidence(resources: Iterable[object], catalog: Catalog, as_of: datetime) -> Evidence:
    """Read Observations (bare, in Bundles or DiagnosticReports) into per-analyte evidence.

    Malformed input never raises: it becomes a DataProblem. `as_of` must be timezone-aware.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    observations, problems = collect_observations(resources)
    reader = ObservationReader(catalog, as_of)
    for item in observations:
        try:
            reader.read(item)
        except Exception as exc:  # last line of defence: one bad resource must not fail a hook
            logger.warning("unexpected error reading an Observation: %s", exc.__class__.__name__)
            reader.problems.append(
                DataProblem(
                    code=ProblemCode.MALFORMED,
                    reason="Observation could not be read",
                    reference=item.source,
                )
            )
    by_analyte: dict[str, list[LabValue]] = {}
    for value in reader.values:
        by_analyte.setdefault(value.analyte, []).append(value)
    analytes = {
        analyte: summarize(catalog.analyte(analyte), values, as_of)
        for analyte, values in sorted(by_analyte.items())
    }
    return Evidence(as_of=as_of, analytes=analytes, problems=(*problems, *reader.problems))
