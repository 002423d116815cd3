"""The analyte catalog: loaded from catalog.yaml once at start-up, validated, precomputed.

After loading, everything the hot path needs is a dict lookup: code -> analyte, and unit
spelling -> `Conversion` (factor and offset computed with the UCUM library at load).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cds_service.yamlfile import ConfigFileError, Loc, YamlDocument

from .catalog_schema import (
    ANALYTE_ID_PATTERN,
    AnalyteSpec,
    CatalogError,
    CatalogSpec,
    FamilySpec,
    LocalCode,
    LocalCodesFile,
    M,
    TrendSpec,
    VariantSpec,
)
from .units import Conversion, UnitError, conversion, is_valid_ucum

UnitFailure = Literal["unit-not-convertible", "unit-ambiguous"]


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CodeEntry(_Entry):
    system: str
    code: str
    display: str
    family: str | None
    confirmed: str


class UnitFamily(_Entry):
    id: str
    canonical: str
    variants: tuple[str, ...]  # accepted UCUM codes, canonical first
    same_as: dict[str, str]  # variant -> the unit it is declared equal to (not library-provable)
    molar_mass_g_per_mol: float | None  # for conversions between mass and substance
    plausible_low: float  # canonical units: outside [low, high] a value is a data error
    plausible_high: float


class TrendRule(_Entry):
    relative_change: float | None
    absolute_change: float | None


class AnalyteEntry(_Entry):
    id: str
    display: str
    freshness_hours: float
    freshness_source: str
    families: dict[str, UnitFamily]
    codes: tuple[CodeEntry, ...]
    trend: TrendRule


@dataclass(frozen=True, slots=True)
class CodeBinding:
    analyte: str
    family: str | None  # None: any family of the analyte


def fold(unit: str) -> str:
    """Spelling key that ignores case and spaces (casefold also maps the micro sign to mu)."""
    return "".join(unit.split()).casefold()


@dataclass(frozen=True, slots=True)
class _UnitTable:
    exact: dict[str, tuple[Conversion, ...]]  # accepted UCUM code -> one conversion per family
    folded: dict[str, tuple[Conversion, ...]]  # folded spelling -> conversions (unambiguous only)


class Catalog:
    """Read-only after construction; share one instance across requests."""

    def __init__(
        self,
        analytes: Mapping[str, AnalyteEntry],
        code_bindings: Mapping[tuple[str, str], CodeBinding],
        unit_tables: Mapping[str, _UnitTable],
        unit_aliases: Mapping[str, str],
        system_aliases: Mapping[str, str],
        ucum_systems: frozenset[str],
        local_code_system: str,
    ) -> None:
        self._analytes = dict(analytes)
        self._bindings = dict(code_bindings)
        self._units = dict(unit_tables)
        self._unit_aliases = dict(unit_aliases)
        self._system_aliases = dict(system_aliases)
        self.ucum_systems = ucum_systems
        self.local_code_system = local_code_system

    @property
    def analyte_ids(self) -> tuple[str, ...]:
        return tuple(self._analytes)

    def analyte(self, analyte_id: str) -> AnalyteEntry:
        """The catalog entry; KeyError for an unknown id."""
        return self._analytes[analyte_id]

    def codes(self, analyte_id: str) -> list[tuple[str, str]]:
        """(system, code) pairs meaning the analyte, including a hospital's local codes."""
        self._analytes[analyte_id]  # KeyError for an unknown id
        return [key for key, b in self._bindings.items() if b.analyte == analyte_id]

    def code_query(self, *analyte_ids: str) -> str:
        """FHIR token list for a search, e.g. "http://loinc.org|26881-3,http://loinc.org|2276-4"."""
        return ",".join(f"{system}|{code}" for a in analyte_ids for system, code in self.codes(a))

    def match_code(self, system: str, code: str) -> CodeBinding | None:
        system = self._system_aliases.get(system, system)
        return self._bindings.get((system, code))

    def resolve_unit(
        self, analyte_id: str, unit: str, family: str | None = None
    ) -> Conversion | UnitFailure:
        """The conversion of `unit` (UCUM code or known spelling) for the analyte.

        Exact UCUM variants win, then exact aliases (an alias whose target is not accepted is
        not convertible, never retried loosely), then case- and space-insensitive spellings.
        """
        table = self._units[analyte_id]
        found = table.exact.get(unit)
        if found is None:
            target = self._unit_aliases.get(unit)
            if target is not None:
                found = table.exact.get(target, ())
            else:
                found = table.folded.get(fold(unit), ())
        if family is not None:
            found = tuple(c for c in found if c.family == family)
        if len(found) == 1:
            return found[0]
        return "unit-ambiguous" if found else "unit-not-convertible"


def _unit_and_source(variant: str | VariantSpec) -> tuple[str, str]:
    """(accepted unit, unit the library converts from): differ for declared equivalences."""
    if isinstance(variant, str):
        return variant, variant
    return variant.unit, variant.same_as or variant.unit


def _variant_conversions(family_id: str, spec: FamilySpec) -> dict[str, Conversion]:
    molar = spec.molar_mass.g_per_mol if spec.molar_mass else None
    out = {spec.canonical: conversion(spec.canonical, family_id, spec.canonical, molar)}
    for variant in spec.variants:
        unit, source = _unit_and_source(variant)
        out[unit] = conversion(source, family_id, spec.canonical, molar)
    return out


def _unit_table(spec: AnalyteSpec, aliases: Mapping[str, str]) -> _UnitTable:
    exact: dict[str, tuple[Conversion, ...]] = {}
    for family_id, family in spec.families.items():
        for unit, conv in _variant_conversions(family_id, family).items():
            exact[unit] = (*exact.get(unit, ()), conv)
    spellings = {unit: unit for unit in exact}
    spellings.update({alias: target for alias, target in aliases.items() if target in exact})
    folded: dict[str, tuple[Conversion, ...] | None] = {}
    for spelling, target in spellings.items():
        key = fold(spelling)
        if key in folded and folded[key] != exact[target]:
            folded[key] = None  # two spellings differing only by case mean different units
        else:
            folded.setdefault(key, exact[target])
    return _UnitTable(exact=exact, folded={k: v for k, v in folded.items() if v is not None})


def _analyte_entry(analyte_id: str, spec: AnalyteSpec, default_trend: TrendSpec) -> AnalyteEntry:
    trend = spec.trend or default_trend
    families = {
        fid: UnitFamily(
            id=fid,
            canonical=f.canonical,
            variants=tuple(
                dict.fromkeys([f.canonical, *(_unit_and_source(v)[0] for v in f.variants)])
            ),
            same_as={v.unit: v.same_as for v in f.variants if not isinstance(v, str) and v.same_as},
            molar_mass_g_per_mol=f.molar_mass.g_per_mol if f.molar_mass else None,
            plausible_low=f.plausible.low,
            plausible_high=f.plausible.high,
        )
        for fid, f in spec.families.items()
    }
    return AnalyteEntry(
        id=analyte_id,
        display=spec.display,
        freshness_hours=spec.freshness_hours,
        freshness_source=" ".join(spec.freshness_source.split()),
        families=families,
        codes=tuple(CodeEntry(**c.model_dump()) for c in spec.codes),
        trend=TrendRule(
            relative_change=trend.relative_change, absolute_change=trend.absolute_change
        ),
    )


def _catalog_text() -> tuple[str, str]:
    ref = resources.files("cds_service.evidence").joinpath("catalog.yaml")
    return str(ref), ref.read_text(encoding="utf-8")


def _strip_private(data: object) -> object:
    """Top-level keys starting with "_" only hold YAML anchors for reuse."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if not str(k).startswith("_")}
    return data


def _load_spec() -> tuple[CatalogSpec, YamlDocument]:
    path, text = _catalog_text()
    document = _document(path, text)
    document.data = _strip_private(document.data)
    spec = _validate(document, CatalogSpec)
    local_concepts = {c.code for c in spec.local_code_system.concepts}
    for analyte_id, analyte in spec.analytes.items():
        if not re.match(ANALYTE_ID_PATTERN, analyte_id):
            raise _error(document, ("analytes", analyte_id), "bad analyte id")
        for i, code in enumerate(analyte.codes):
            if code.system == spec.local_code_system.url and code.code not in local_concepts:
                where = ("analytes", analyte_id, "codes", i)
                msg = f"local code {code.code!r} is not defined in local_code_system"
                raise _error(document, where, msg)
    return spec, document


def _read_local_codes(path: Path) -> tuple[LocalCodesFile, YamlDocument]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read local codes file ({exc.strerror})") from exc
    document = _document(path, text)
    if document.data is None:
        raise CatalogError(f"{path}: local codes file is empty")
    return _validate(document, LocalCodesFile), document


# The shared YAML reader raises ConfigFileError; the catalog's own subclass says which file kind.
def _document(path: Path | str, text: str) -> YamlDocument:
    try:
        return YamlDocument(path, text)
    except ConfigFileError as exc:
        raise CatalogError(str(exc)) from None


def _validate(document: YamlDocument, model: type[M]) -> M:
    try:
        return document.validate(model)
    except ConfigFileError as exc:
        raise CatalogError(str(exc)) from None


def _error(document: YamlDocument, loc: Loc, message: str) -> CatalogError:
    return CatalogError(str(document.error(loc, message)))


class _Bindings:
    """Collects code -> analyte bindings, refusing a code that would mean two analytes."""

    def __init__(self, system_aliases: Mapping[str, str]) -> None:
        self.system_aliases = system_aliases
        self.bindings: dict[tuple[str, str], CodeBinding] = {}

    def add(self, system: str, code: str, binding: CodeBinding) -> str | None:
        """Bind the code; return an error message on conflict."""
        key = (self.system_aliases.get(system, system), code)
        existing = self.bindings.setdefault(key, binding)
        if existing != binding:
            return f"code {key[0]}|{code} already means {existing.analyte!r}"
        return None


def _local_code_error(
    entry: LocalCode, analytes: Mapping[str, AnalyteEntry]
) -> tuple[str, str] | None:
    """(field, message) when a local code names an unknown analyte or family."""
    if entry.analyte not in analytes:
        return (
            "analyte",
            f"unknown analyte {entry.analyte!r} (known: {', '.join(sorted(analytes))})",
        )
    families = analytes[entry.analyte].families
    if entry.family is not None and entry.family not in families:
        known = ", ".join(families)
        return "family", f"unknown family {entry.family!r} for {entry.analyte!r} (known: {known})"
    return None


def _add_local_codes(
    path: Path, analytes: Mapping[str, AnalyteEntry], bindings: _Bindings, aliases: dict[str, str]
) -> None:
    local, document = _read_local_codes(path)
    for i, entry in enumerate(local.codes):
        problem = _local_code_error(entry, analytes)
        if problem is not None:
            raise _error(document, ("codes", i, problem[0]), problem[1])
        conflict = bindings.add(entry.system, entry.code, CodeBinding(entry.analyte, entry.family))
        if conflict is not None:
            raise _error(document, ("codes", i, "code"), conflict)
    for alias, target in local.unit_aliases.items():
        if not is_valid_ucum(target):
            msg = f"alias target {target!r} is not a valid UCUM code"
            raise _error(document, ("unit_aliases", alias), msg)
        aliases[alias] = target


def load_catalog(local_codes_file: Path | None = None) -> Catalog:
    """Load, validate and precompute the catalog; raise CatalogError naming the bad file/line.

    `local_codes_file` is a hospital's YAML file of extra codes (any system) per analyte.
    """
    spec, document = _load_spec()
    analytes = {
        aid: _analyte_entry(aid, a, spec.trend_defaults) for aid, a in spec.analytes.items()
    }
    bindings = _Bindings(spec.code_system_aliases)
    for aid, a in spec.analytes.items():
        for i, c in enumerate(a.codes):
            conflict = bindings.add(c.system, c.code, CodeBinding(aid, c.family))
            if conflict is not None:
                raise _error(document, ("analytes", aid, "codes", i), conflict)
    aliases = dict(spec.unit_aliases)
    if local_codes_file is not None:
        _add_local_codes(Path(local_codes_file), analytes, bindings, aliases)
    tables: dict[str, _UnitTable] = {}
    for aid, a in spec.analytes.items():
        try:
            tables[aid] = _unit_table(a, aliases)
        except UnitError as exc:
            raise _error(document, ("analytes", aid, "families"), str(exc)) from exc
    return Catalog(
        analytes=analytes,
        code_bindings=bindings.bindings,
        unit_tables=tables,
        unit_aliases=aliases,
        system_aliases=spec.code_system_aliases,
        ucum_systems=frozenset(spec.ucum_systems),
        local_code_system=spec.local_code_system.url,
    )
