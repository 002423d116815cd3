"""UCUM unit conversion, done once at catalog load with a real UCUM library.

ucumvert parses UCUM codes into pint quantities. Creating its registry takes ~0.4 s and one
conversion ~0.7 ms, far too slow for the hot path, so the catalog asks this module for a
`Conversion` (factor and offset) per accepted unit and the hot path only multiplies.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from pint.errors import DimensionalityError
from ucumvert import PintUcumRegistry

# The library's floating arithmetic gives 0.9999999999999999 for pg/mL -> ng/L; factors that
# are within a few ulps of a 12-digit number are snapped to it (removing noise, keeping 5/9).
_SIGNIFICANT_DIGITS = 12
_SNAP_TOLERANCE = 1e-14
_SPAN = 1e6
_ANNOTATION_ONLY = re.compile(r"\{[^{}]*\}")


class UnitError(ValueError):
    """A catalog unit that the UCUM library cannot parse or convert."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """canonical = value * factor + offset (offset is non-zero only for temperatures)."""

    family: str
    unit: str  # canonical UCUM unit of the family
    factor: float
    offset: float = 0.0

    def apply(self, value: float) -> float:
        return value * self.factor + self.offset


@cache
def ucum_registry() -> PintUcumRegistry:
    """The one UCUM registry of the process (expensive to build, read-only afterwards)."""
    return PintUcumRegistry()


def _quantity(ucum_code: str) -> Any:
    registry = ucum_registry()
    try:
        parsed = registry.from_ucum(ucum_code)
    except Exception as exc:  # ucumvert raises lark and pint errors of several kinds
        raise UnitError(f"not a valid UCUM code: {ucum_code!r} ({exc.__class__.__name__})") from exc
    if isinstance(parsed, int | float) or _ANNOTATION_ONLY.fullmatch(ucum_code):
        # Annotation-only codes ({molecules}/{cell} -> 1.0, a lone {ABC} -> a parser token) mean
        # the unit 1 in UCUM; make that a dimensionless quantity of ucumvert's own registry.
        one = registry.from_ucum("1")
        return one * (float(parsed) if isinstance(parsed, int | float) else 1.0)
    if not hasattr(parsed, "to"):
        raise UnitError(f"UCUM code {ucum_code!r} did not parse to a quantity")
    return parsed


def _converter(source: str, target: str, molar_mass_g_per_mol: float | None) -> Any:
    """A function mapping a magnitude in `source` to a magnitude in `target`."""
    src, dst = _quantity(source), _quantity(target)

    def convert(x: float) -> float:
        # Build with the parsed quantity's own class (ucumvert parses into its own registry);
        # Quantity(x * magnitude, units) keeps offset units (Cel, [degF]) correct.
        q = src.__class__(x * src.magnitude, src.units)
        try:
            out = q.to(dst.units)
        except DimensionalityError:
            if molar_mass_g_per_mol is None:
                raise
            molar_mass = _quantity("g/mol") * molar_mass_g_per_mol
            try:
                out = (q * molar_mass).to(dst.units)  # amount of substance -> mass
            except DimensionalityError:
                out = (q / molar_mass).to(dst.units)  # mass -> amount of substance
        return float(out.magnitude) / float(dst.magnitude)

    return convert


def _round(x: float) -> float:
    snapped = float(f"{x:.{_SIGNIFICANT_DIGITS}g}")
    return snapped if math.isclose(snapped, x, rel_tol=_SNAP_TOLERANCE) else x


@cache  # pure, and analytes sharing a family (all cytokines) share the work at load
def conversion(
    source: str, family: str, canonical: str, molar_mass_g_per_mol: float | None = None
) -> Conversion:
    """The conversion of `source` into the family's canonical unit, checked for linearity."""
    try:
        convert = _converter(source, canonical, molar_mass_g_per_mol)
        # A wide span keeps the library's rounding noise (temperatures go via kelvin) out of
        # the factor; the midpoint checks linearity.
        at_zero, at_mid, at_span = convert(0.0), convert(_SPAN / 2), convert(_SPAN)
    except DimensionalityError as exc:
        raise UnitError(f"{source!r} cannot be converted to {canonical!r}") from exc
    factor, offset = (at_span - at_zero) / _SPAN, at_zero
    if not (math.isfinite(factor) and factor > 0):
        raise UnitError(f"{source!r} -> {canonical!r} gives a non-positive factor {factor}")
    if not math.isclose(at_mid, _SPAN / 2 * factor + offset, rel_tol=1e-9):
        raise UnitError(f"{source!r} -> {canonical!r} is not linear")
    return Conversion(family=family, unit=canonical, factor=_round(factor), offset=_round(offset))


def is_valid_ucum(code: str) -> bool:
    try:
        _quantity(code)
    except UnitError:
        return False
    return True
