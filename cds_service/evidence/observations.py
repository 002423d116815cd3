"""Reading one Observation (and its components) into LabValues in canonical units."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NamedTuple, cast

from .catalog import Catalog, CodeBinding
from .collect import ObservationInput
from .models import DataProblem, LabValue, ProblemCode, UsableStatus
from .times import effective_time, read_fhir_datetime
from .units import Conversion
from .values import (
    ValueProblem,
    clean_display,
    format_number,
    number,
    quantity_unit,
    read_value,
)

USABLE_STATUSES: frozenset[str] = frozenset({"final", "amended", "corrected", "preliminary"})
# Clocks of EHR, lab system and this service differ a little; beyond this a result is future-dated.
CLOCK_SKEW = timedelta(minutes=5)
_ROUNDING = 1e-9  # relative: far below any lab's precision, far above float rounding


class _Target(NamedTuple):
    """One place in the Observation that carries a catalog analyte: the root or a component.
    (A named tuple: one per value read, cheaper to build than a frozen dataclass.)"""

    element: Mapping[str, object]
    binding: CodeBinding
    code: str  # "system|code"
    component: bool


def _match(concept: object, catalog: Catalog) -> tuple[CodeBinding, str] | None:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings if isinstance(codings, list) else []:
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str):
            binding = catalog.match_code(system, code.strip())
            if binding is not None:
                return binding, f"{system}|{code.strip()}"
    return None


def _targets(resource: Mapping[str, object], catalog: Catalog) -> list[_Target]:
    targets: list[_Target] = []
    root = _match(resource.get("code"), catalog)
    components = resource.get("component")
    component_list = components if isinstance(components, list) else []
    if root is not None:
        targets.append(_Target(resource, root[0], root[1], component=False))
    for component in component_list:
        if isinstance(component, dict):
            found = _match(component.get("code"), catalog)
            if found is not None:
                targets.append(_Target(component, found[0], found[1], component=True))
    # A panel whose own code is a catalog code but carries its results in components.
    if root is not None and len(targets) > 1 and not _has_value(resource):
        targets.pop(0)
    return targets


def _has_value(element: Mapping[str, object]) -> bool:
    return any(
        isinstance(key, str) and (key.startswith("value") or key == "dataAbsentReason")
        for key in element
    )


def _interpretation(element: Mapping[str, object]) -> tuple[str, ...]:
    concepts = element.get("interpretation")
    codes: list[str] = []
    for concept in concepts if isinstance(concepts, list) else []:
        codings = concept.get("coding") if isinstance(concept, dict) else None
        for coding in codings if isinstance(codings, list) else []:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and code and code not in codes:
                codes.append(clean_display(code))
    return tuple(codes)


def _normal_range(element: Mapping[str, object]) -> Mapping[str, object] | None:
    """The first referenceRange with a low or high bound whose type is absent or "normal"."""
    ranges = element.get("referenceRange")
    for entry in ranges if isinstance(ranges, list) else []:
        if not isinstance(entry, dict):
            continue
        rtype = entry.get("type")
        if rtype is not None and not _is_normal_range_type(rtype):
            continue
        if isinstance(entry.get("low"), dict) or isinstance(entry.get("high"), dict):
            return entry
    return None


def _is_normal_range_type(rtype: object) -> bool:
    codings = rtype.get("coding") if isinstance(rtype, dict) else None
    return isinstance(codings, list) and any(
        isinstance(c, dict) and c.get("code") == "normal" for c in codings
    )


def _range_unit(reference_range: Mapping[str, object] | None, catalog: Catalog) -> str | None:
    if reference_range is None:
        return None
    for key in ("low", "high"):
        bound = reference_range.get(key)
        if isinstance(bound, dict):
            unit = quantity_unit(bound, catalog.ucum_systems)
            if unit is not None:
                return unit
    return None


class ObservationReader:
    """Reads Observations against one catalog at one `as_of`, collecting values and problems."""

    def __init__(self, catalog: Catalog, as_of: datetime) -> None:
        self.catalog = catalog
        self.as_of = as_of
        self.values: list[LabValue] = []
        self.problems: list[DataProblem] = []

    def problem(self, code: str, reason: str, source: str, analyte: str | None) -> None:
        self.problems.append(
            DataProblem(code=code, reason=reason, reference=source, analyte=analyte)
        )

    def read(self, item: ObservationInput) -> None:
        resource, source = item.resource, item.source
        targets = _targets(resource, self.catalog)
        if not targets:
            if not isinstance(resource.get("code"), dict):
                self.problem(ProblemCode.MALFORMED, "Observation has no code", source, None)
            else:
                self.problem(
                    ProblemCode.UNKNOWN_CODE,
                    "no catalog code in Observation.code or its components",
                    source,
                    None,
                )
            return
        first = targets[0].binding.analyte
        status = resource.get("status")
        if not isinstance(status, str) or status not in USABLE_STATUSES:
            shown = clean_display(status) if isinstance(status, str) else "missing"
            for analyte in dict.fromkeys(t.binding.analyte for t in targets):
                self.problem(
                    ProblemCode.STATUS_IGNORED, f"status {shown} is not usable", source, analyte
                )
            return
        read_time = effective_time(resource) or read_fhir_datetime(item.fallback_time)
        if read_time is None:
            self.problem(
                ProblemCode.NO_EFFECTIVE_TIME, "no effective[x] or issued time", source, first
            )
            return
        effective = read_time.moment
        if read_time.zone_assumed:
            # Used, but said: the lab's local time may differ from UTC by up to 14 hours.
            self.problem(
                ProblemCode.TIME_WITHOUT_ZONE,
                "effective time has no time zone; read as UTC (the lab's local time may differ "
                "by up to 14 h, which moves its freshness)",
                source,
                first,
            )
        if effective > self.as_of + CLOCK_SKEW:
            self.problem(
                ProblemCode.FUTURE_DATED,
                "effective time is after the evaluation time",
                source,
                first,
            )
            return
        root_interpretation = _interpretation(resource)
        for target in targets:
            interpretation = (
                _interpretation(target.element) if target.component else root_interpretation
            )
            self._read_target(target, source, effective, cast(UsableStatus, status), interpretation)

    def _read_target(
        self,
        target: _Target,
        source: str,
        effective: datetime,
        status: UsableStatus,
        interpretation: tuple[str, ...],
    ) -> None:
        analyte = target.binding.analyte
        raw = read_value(target.element, self.catalog.ucum_systems)
        if isinstance(raw, ValueProblem):
            self.problem(raw.code, raw.reason, source, analyte)
            return
        reference_range = (
            _normal_range(target.element) if "referenceRange" in target.element else None
        )
        unit, reported = raw.unit, raw.reported
        if unit is None:
            unit = _range_unit(reference_range, self.catalog)
            if unit is None:
                self.problem(
                    ProblemCode.UNIT_MISSING,
                    "value has no unit, nor has its referenceRange",
                    source,
                    analyte,
                )
                return
            reported = clean_display(f"{reported} {unit}")
        conversion = self.catalog.resolve_unit(analyte, unit, target.binding.family)
        if not isinstance(conversion, Conversion):
            self.problem(
                conversion,
                f"unit {clean_display(unit)!r} is not an accepted unit of {analyte}",
                source,
                analyte,
            )
            return
        value = conversion.apply(raw.value)
        upper = conversion.apply(raw.upper) if raw.upper is not None else None
        entry = self.catalog.analyte(analyte)
        family = entry.families[conversion.family]
        # Unit conversion rounds: a result at a bound, sent in another unit, comes back a hair
        # past it (1e6 U/L as 16,666.67 ukat/L reads 1,000,000.0000001 U/L).
        low_bound = family.plausible_low - abs(family.plausible_low) * _ROUNDING
        high_bound = family.plausible_high + abs(family.plausible_high) * _ROUNDING
        if not low_bound <= value <= high_bound or (
            upper is not None and not low_bound <= upper <= high_bound
        ):
            # A negative concentration or 1e300 pg/mL is a unit or entry error, never a result.
            self.problem(
                ProblemCode.IMPLAUSIBLE_VALUE,
                f"{clean_display(reported)} is outside the plausible range of {entry.display} "
                f"({format_number(family.plausible_low)} to {format_number(family.plausible_high)}"
                f" {conversion.unit}): not judged",
                source,
                analyte,
            )
            return
        low, high = self._reference_bounds(reference_range, unit, conversion, source, analyte)
        # Validated from a dict: the model's keyword __init__ costs 60 % more per value.
        self.values.append(
            LabValue.model_validate(
                {
                    "analyte": analyte,
                    "value": value,
                    "comparator": raw.comparator,
                    "upper": upper,
                    "unit": conversion.unit,
                    "family": conversion.family,
                    "effective": effective,
                    "status": status,
                    "reference_low": low,
                    "reference_high": high,
                    "interpretation": interpretation,
                    "source": source,
                    "component": target.code if target.component else None,
                    "code": target.code,
                    "reported": reported,
                }
            )
        )

    def _reference_bounds(
        self,
        reference_range: Mapping[str, object] | None,
        value_unit: str,
        conversion: Conversion,
        source: str,
        analyte: str,
    ) -> tuple[float | None, float | None]:
        """Reference bounds converted like the value; a bound without a unit has the value's."""
        if reference_range is None:
            return None, None
        bounds: list[float | None] = []
        for key in ("low", "high"):
            bound = reference_range.get(key)
            value = number(bound.get("value")) if isinstance(bound, dict) else None
            if value is None or not isinstance(bound, dict):
                bounds.append(None)
                continue
            unit = quantity_unit(bound, self.catalog.ucum_systems) or value_unit
            # Usually the value's own unit: its conversion is already known.
            found = (
                conversion
                if unit == value_unit
                else self.catalog.resolve_unit(analyte, unit, conversion.family)
            )
            if not isinstance(found, Conversion):
                self.problem(
                    ProblemCode.REFERENCE_RANGE_NOT_CONVERTIBLE,
                    f"referenceRange unit {clean_display(unit)!r} does not convert like the value",
                    source,
                    analyte,
                )
                return None, None
            bounds.append(found.apply(value))
        return bounds[0], bounds[1]
