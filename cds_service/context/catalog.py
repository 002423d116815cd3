"""The chart-context catalog: loaded from catalog.yaml (plus a hospital's codes file) at start-up.

After loading, recognising a coding is a dict lookup (exact codes) or a short scan (ICD-10-CM
prefixes), and recognising a drug name is one precompiled regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cds_service.yamlfile import ConfigFileError, Loc, YamlDocument

from .models import SETTINGS, OxygenLevel, Setting

T = TypeVar("T", bound=BaseModel)
CodeStatus = Literal["V", "S", "unverified", "local"]
SupportKind = Literal["device", "flow", "fio2"]
_ID = r"^[a-z][a-z0-9-]*$"
Id = Annotated[str, Field(pattern=_ID)]


class ContextCatalogError(ConfigFileError):
    """The chart-context catalog or a hospital's context codes file is invalid."""


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CodeSpec(_Spec):
    system: str = Field(min_length=1)  # a short name of `systems` or a URI
    code: str | None = Field(None, min_length=1)
    prefix: str | None = Field(None, min_length=1)
    status: CodeStatus = "local"
    product: str | None = None

    @model_validator(mode="after")
    def _code_or_prefix(self) -> CodeSpec:
        if (self.code is None) == (self.prefix is None):
            raise ValueError("give exactly one of `code` and `prefix`")
        return self


class Sourced(_Spec):
    source: str = Field(min_length=1)


class WindowSpec(Sourced):
    days: int = Field(ge=1, le=365)


class HoursSpec(Sourced):
    hours: float = Field(gt=0, le=72)


class ConditionSpec(_Spec):
    display: str = Field(min_length=1)
    settings: list[Setting] = []
    supporting: bool = False  # supports its settings only beside another finding of them
    kind: str | None = None
    infection: bool = False
    hlh_trigger: Literal["infection", "malignancy"] | None = None
    latent_tb: bool = False
    codes: list[CodeSpec] = []
    texts: list[str] = []  # free-text diagnoses a hospital chooses to recognise

    @model_validator(mode="after")
    def _no_unknown(self) -> ConditionSpec:
        if "unknown" in self.settings:
            raise ValueError("`unknown` is what no finding means; it is not a setting to find")
        return self


class ProcedureSpec(_Spec):
    display: str = Field(min_length=1)
    kind: Literal["car-t", "bispecific"]
    codes: list[CodeSpec] = []
    texts: list[str] = []


class DrugSpec(_Spec):
    class_: str = Field(alias="class", min_length=1)
    iec: Literal["car-t", "bispecific"] | None = None
    names: list[str] = []
    codes: list[CodeSpec] = []


class NamesAndCodes(_Spec):
    """An oxygen device's names and codes; in a hospital's file, also the extra ones it gives
    a shipped procedure or device."""

    names: list[str] = []
    codes: list[CodeSpec] = []


class OxygenSpec(_Spec):
    observation_codes: list[CodeSpec]
    flow_codes: list[CodeSpec]
    fio2_codes: list[CodeSpec]
    high_flow_above_l_min: float = Field(gt=0)
    high_flow_source: str = Field(min_length=1)
    devices: dict[OxygenLevel, NamesAndCodes]


class ContextCatalogSpec(_Spec):
    schema_version: Literal[1]
    systems: dict[str, str]
    system_aliases: dict[str, str] = {}
    iec_windows: dict[Literal["car-t", "bispecific"], WindowSpec]
    vasopressor_current_hours: HoursSpec
    conditions: dict[Id, ConditionSpec]
    procedures: dict[Id, ProcedureSpec]
    drugs: dict[Id, DrugSpec]
    class_names: dict[str, list[str]] = {}
    oxygen: OxygenSpec


class LocalConditionSpec(_Spec):
    """A hospital's entry: extra codes/texts for a shipped concept, or a whole new concept."""

    display: str | None = None
    settings: list[Setting] | None = None
    supporting: bool | None = None
    kind: str | None = None
    infection: bool | None = None
    hlh_trigger: Literal["infection", "malignancy"] | None = None
    latent_tb: bool | None = None
    codes: list[CodeSpec] = []
    texts: list[str] = []


class LocalDrugSpec(_Spec):
    class_: str | None = Field(None, alias="class")
    iec: Literal["car-t", "bispecific"] | None = None
    names: list[str] = []
    codes: list[CodeSpec] = []


class LocalContextCodes(_Spec):
    conditions: dict[Id, LocalConditionSpec] = {}
    procedures: dict[Id, NamesAndCodes] = {}  # extra codes/texts for a shipped procedure
    drugs: dict[Id, LocalDrugSpec] = {}
    devices: dict[OxygenLevel, NamesAndCodes] = {}
    system_aliases: dict[str, str] = {}


@dataclass(frozen=True)
class Concept:
    """One recognisable thing: a condition, a procedure, a drug or an oxygen support level."""

    kind: Literal["condition", "procedure", "drug", "drug-class", "device"]
    id: str
    display: str
    settings: tuple[Setting, ...] = ()
    supporting: bool = False  # a condition that never opens its settings alone
    finding_kind: str | None = None  # hlh: primary | infection | mas; procedure: car-t
    infection: bool = False
    hlh_trigger: str | None = None
    latent_tb: bool = False
    drug_class: str | None = None
    iec: str | None = None


@dataclass(frozen=True)
class Match:
    concept: Concept
    status: str  # V | S | unverified | local | name | text
    code: str  # "system|code" (or the name/text that matched)
    product: str | None = None


@dataclass
class _Index:
    exact: dict[tuple[str, str], list[Match]] = field(default_factory=dict)
    prefixes: dict[str, list[tuple[str, Match]]] = field(default_factory=dict)


@dataclass(frozen=True)
class ContextCatalog:
    systems: Mapping[str, str]
    system_aliases: Mapping[str, str]
    windows_days: Mapping[str, int]
    window_sources: Mapping[str, str]
    vasopressor_current_hours: float
    high_flow_above_l_min: float
    concepts: Mapping[tuple[str, str], Concept]  # (kind, id) -> concept
    _codes: _Index
    _names: Mapping[str, tuple[re.Pattern[str], tuple[tuple[str, Concept], ...]]]
    oxygen_observation_codes: frozenset[tuple[str, str]]
    flow_codes: frozenset[tuple[str, str]]
    fio2_codes: frozenset[tuple[str, str]]
    procedure_codes: tuple[str, ...] = ()  # "system|code" of every recognised procedure code
    procedure_texts: bool = False  # a hospital recognises procedures by text as well

    @property
    def oxygen_codes(self) -> list[str]:
        """The codes ("system|code") of the Observations the reader reads for respiratory
        support: the device, the oxygen flow and FiO2."""
        codes = self.oxygen_observation_codes | self.flow_codes | self.fio2_codes
        return sorted(f"{system}|{code}" for system, code in codes)

    def canonical_system(self, system: str) -> str:
        system = system.strip()
        return self.system_aliases.get(system, system)

    def match_code(self, system: str, code: str, kind: str) -> list[Match]:
        """Concepts of `kind` that a coding means (exact codes, then prefixes)."""
        system, code = self.canonical_system(system), code.strip()
        found = [m for m in self._codes.exact.get((system, code), []) if m.concept.kind == kind]
        for prefix, match in self._codes.prefixes.get(system, []):
            if match.concept.kind == kind and code.startswith(prefix):
                found.append(match)
        return found

    def names_of(self, kind: str, concept_id: str) -> list[str]:
        """The names (casefolded) that recognise one concept in free text."""
        entry = self._names.get(kind)
        return [name for name, concept in entry[1] if concept.id == concept_id] if entry else []

    def match_text(self, text: str, kind: str) -> list[Match]:
        """Concepts of `kind` named in free text (longest name first, whole words)."""
        entry = self._names.get(kind)
        if entry is None or not text:
            return []
        pattern, names = entry
        lookup = dict(names)
        seen: set[str] = set()
        found: list[Match] = []
        for hit in pattern.finditer(text.casefold()):
            # The pattern ignores case; a match that casefolds differently from the name it
            # came from (odd Unicode) names no concept.
            concept = lookup.get(hit.group(0))
            if concept is not None and concept.id not in seen:
                seen.add(concept.id)
                found.append(Match(concept, "name", hit.group(0)))
        return found

    def drug(self, drug_id: str) -> Concept | None:
        return self.concepts.get(("drug", drug_id))

    def is_code(self, codes: frozenset[tuple[str, str]], system: str, code: str) -> bool:
        return (self.canonical_system(system), code.strip()) in codes

    def support_kind(self, system: object, code: object) -> SupportKind | None:
        """What a respiratory-support Observation code charts (the device, the oxygen flow or
        FiO2), or None. Most Observations of a chart are labs: their code alone rules them out."""
        if not isinstance(code, str) or not isinstance(system, str):
            return None
        code = code.strip()
        if code not in self._support_code_values:
            return None
        return self._support_kinds.get((self.canonical_system(system), code))

    @cached_property
    def _support_code_values(self) -> frozenset[str]:
        return frozenset(code for _, code in self._support_kinds)

    @cached_property
    def _support_kinds(self) -> dict[tuple[str, str], SupportKind]:
        by_kind: tuple[tuple[SupportKind, frozenset[tuple[str, str]]], ...] = (
            ("fio2", self.fio2_codes),
            ("flow", self.flow_codes),
            ("device", self.oxygen_observation_codes),
        )
        kinds: dict[tuple[str, str], SupportKind] = {}
        for kind, codes in by_kind:  # a code in two sets: the device wins, then the flow
            kinds.update(dict.fromkeys(codes, kind))
        return kinds


def _packaged_text() -> str:
    return resources.files("cds_service.context").joinpath("catalog.yaml").read_text("utf-8")


def _document(path: Path | str, text: str) -> YamlDocument:
    try:
        return YamlDocument(path, text)
    except ConfigFileError as exc:
        raise ContextCatalogError(str(exc)) from None


def _validate(document: YamlDocument, model: type[T]) -> T:
    try:
        return document.validate(model)
    except ConfigFileError as exc:
        raise ContextCatalogError(str(exc)) from None


def _error(document: YamlDocument, loc: Loc, message: str) -> ContextCatalogError:
    """The catalog's own error, naming the file and the line of `loc`."""
    return ContextCatalogError(str(document.error(loc, message)))


class _Builder:
    def __init__(self, spec: ContextCatalogSpec) -> None:
        self.systems = dict(spec.systems)
        self.aliases = dict(spec.system_aliases)
        self.index = _Index()
        self.concepts: dict[tuple[str, str], Concept] = {}
        self.names: dict[str, dict[str, Concept]] = {}

    def system(self, name: str) -> str:
        uri = self.systems.get(name, name)
        return self.aliases.get(uri, uri)

    def add(
        self, concept: Concept, codes: Iterable[CodeSpec] = (), names: Iterable[str] = ()
    ) -> None:
        """Make `concept` known, recognised by these codes and names."""
        self.concepts[(concept.kind, concept.id)] = concept
        self.add_codes(concept, codes)
        self.add_names(concept, names)

    def add_codes(self, concept: Concept, codes: Iterable[CodeSpec]) -> None:
        for code in codes:
            system = self.system(code.system)
            if code.code is not None:
                match = Match(concept, code.status, f"{system}|{code.code}", code.product)
                self.index.exact.setdefault((system, code.code), []).append(match)
            elif code.prefix is not None:
                match = Match(concept, code.status, f"{system}|{code.prefix}*", code.product)
                self.index.prefixes.setdefault(system, []).append((code.prefix, match))

    def add_names(self, concept: Concept, names: Iterable[str]) -> None:
        table = self.names.setdefault(concept.kind, {})
        for name in names:
            key = " ".join(name.casefold().split())
            if key:
                table.setdefault(key, concept)

    def code_set(self, codes: Iterable[CodeSpec]) -> frozenset[tuple[str, str]]:
        return frozenset((self.system(c.system), c.code) for c in codes if c.code is not None)

    def compiled(self) -> dict[str, tuple[re.Pattern[str], tuple[tuple[str, Concept], ...]]]:
        out = {}
        for kind, table in self.names.items():
            names = sorted(table, key=len, reverse=True)  # "high flow nasal cannula" first
            alternatives = "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in names)
            pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
            out[kind] = (pattern, tuple(table.items()))
        return out


def _as_local(codes: Iterable[CodeSpec]) -> list[CodeSpec]:
    """A hospital's own codes, marked `local` whatever status its file gives them."""
    return [code.model_copy(update={"status": "local"}) for code in codes]


def _merge_local(
    spec: ContextCatalogSpec, local: LocalContextCodes, document: YamlDocument
) -> ContextCatalogSpec:
    """The shipped catalog with a hospital's additions (codes marked `local`)."""
    conditions = dict(spec.conditions)
    for cid, entry in local.conditions.items():
        codes = _as_local(entry.codes)
        base = conditions.get(cid)
        if base is None:
            if entry.display is None:
                msg = "a new condition needs `display` (and `settings`)"
                raise _error(document, ("conditions", cid), msg)
            base = ConditionSpec(display=entry.display)
        updates = {
            k: v for k, v in entry.model_dump(exclude={"codes", "texts"}).items() if v is not None
        }
        conditions[cid] = base.model_copy(
            update={**updates, "codes": [*base.codes, *codes], "texts": [*base.texts, *entry.texts]}
        )
    procedures = dict(spec.procedures)
    for pid, extra in local.procedures.items():
        if pid not in procedures:
            known = ", ".join(procedures)
            msg = f"unknown procedure {pid!r} (known: {known})"
            raise _error(document, ("procedures", pid), msg)
        base_p = procedures[pid]
        codes = _as_local(extra.codes)
        procedures[pid] = base_p.model_copy(
            update={"codes": [*base_p.codes, *codes], "texts": [*base_p.texts, *extra.names]}
        )
    drugs = dict(spec.drugs)
    for did, drug in local.drugs.items():
        codes = _as_local(drug.codes)
        base_d = drugs.get(did)
        if base_d is None:
            if drug.class_ is None:
                msg = "a new drug needs `class`"
                raise _error(document, ("drugs", did), msg)
            base_d = DrugSpec.model_validate({"class": drug.class_, "iec": drug.iec})
        drugs[did] = base_d.model_copy(
            update={"names": [*base_d.names, *drug.names], "codes": [*base_d.codes, *codes]}
        )
    devices = dict(spec.oxygen.devices)
    for level, device in local.devices.items():
        base_v = devices.get(level, NamesAndCodes())
        codes = _as_local(device.codes)
        devices[level] = base_v.model_copy(
            update={"names": [*base_v.names, *device.names], "codes": [*base_v.codes, *codes]}
        )
    return spec.model_copy(
        update={
            "conditions": conditions,
            "procedures": procedures,
            "drugs": drugs,
            "oxygen": spec.oxygen.model_copy(update={"devices": devices}),
            "system_aliases": {**spec.system_aliases, **local.system_aliases},
        }
    )


def load_context_catalog(local_codes_file: Path | None = None) -> ContextCatalog:
    """Load and validate the catalog (and a hospital's codes file); raise ContextCatalogError
    naming the file and the line of the first problem."""
    document = _document("cds_service/context/catalog.yaml", _packaged_text())
    spec = _validate(document, ContextCatalogSpec)
    _check_systems(spec, document)
    if local_codes_file is not None:
        path = Path(local_codes_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ContextCatalogError(f"{path}: cannot be read ({exc.strerror})") from exc
        local_document = _document(path, text)
        if local_document.data is None:
            raise ContextCatalogError(f"{path}: the context codes file is empty")
        local = _validate(local_document, LocalContextCodes)
        spec = _merge_local(spec, local, local_document)
    return _build(spec)


def _check_systems(spec: ContextCatalogSpec, document: YamlDocument) -> None:
    """Every short system name used must be defined (a typo would silently match nothing)."""

    def check(codes: list[CodeSpec], loc: tuple[str | int, ...]) -> None:
        for i, code in enumerate(codes):
            if (
                code.system not in spec.systems
                and "://" not in code.system
                and ":" not in (code.system)
            ):
                known = ", ".join(spec.systems)
                msg = f"unknown code system {code.system!r} (known: {known}, or a URI)"
                raise _error(document, (*loc, i, "system"), msg)

    for cid, condition in spec.conditions.items():
        check(condition.codes, ("conditions", cid, "codes"))
    for pid, procedure in spec.procedures.items():
        check(procedure.codes, ("procedures", pid, "codes"))
    for did, drug in spec.drugs.items():
        check(drug.codes, ("drugs", did, "codes"))
    for level, device in spec.oxygen.devices.items():
        check(device.codes, ("oxygen", "devices", level, "codes"))


def _build(spec: ContextCatalogSpec) -> ContextCatalog:
    builder = _Builder(spec)
    for cid, condition in spec.conditions.items():
        concept = Concept(
            kind="condition",
            id=cid,
            display=condition.display,
            settings=tuple(s for s in condition.settings if s in SETTINGS),
            supporting=condition.supporting,
            finding_kind=condition.kind,
            infection=condition.infection,
            hlh_trigger=condition.hlh_trigger,
            latent_tb=condition.latent_tb,
        )
        builder.add(concept, condition.codes, condition.texts)
    for pid, procedure in spec.procedures.items():
        concept = Concept(
            kind="procedure",
            id=pid,
            display=procedure.display,
            settings=("iec",),
            finding_kind=procedure.kind,
        )
        builder.add(concept, procedure.codes, procedure.texts)
    for did, drug in spec.drugs.items():
        concept = Concept(
            kind="drug",
            id=did,
            display=drug.names[0] if drug.names else did,
            settings=("iec",) if drug.iec else (),
            drug_class=drug.class_,
            iec=drug.iec,
        )
        builder.add(concept, drug.codes, [did.replace("-", " "), *drug.names])
    for drug_class, names in spec.class_names.items():
        concept = Concept(
            kind="drug-class", id=drug_class, display=drug_class, drug_class=drug_class
        )
        builder.add(concept, names=names)
    for level, device in spec.oxygen.devices.items():
        builder.add(Concept(kind="device", id=level, display=level), device.codes, device.names)
    return ContextCatalog(
        systems=builder.systems,
        system_aliases=builder.aliases,
        windows_days={k: w.days for k, w in spec.iec_windows.items()},
        window_sources={k: w.source for k, w in spec.iec_windows.items()},
        vasopressor_current_hours=spec.vasopressor_current_hours.hours,
        high_flow_above_l_min=spec.oxygen.high_flow_above_l_min,
        concepts=builder.concepts,
        _codes=builder.index,
        _names=builder.compiled(),
        oxygen_observation_codes=builder.code_set(spec.oxygen.observation_codes),
        flow_codes=builder.code_set(spec.oxygen.flow_codes),
        fio2_codes=builder.code_set(spec.oxygen.fio2_codes),
        procedure_codes=tuple(
            f"{builder.system(c.system)}|{c.code}"
            for procedure in spec.procedures.values()
            for c in procedure.codes
            if c.code is not None
        ),
        procedure_texts=any(procedure.texts for procedure in spec.procedures.values()),
    )
