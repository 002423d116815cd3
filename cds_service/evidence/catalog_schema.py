"""Pydantic schemas of catalog.yaml and of a hospital's local codes file, and YAML reading.

Validation errors are turned into a `CatalogError` that names the file and, where it can be
found, the YAML line of the offending entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ANALYTE_ID_PATTERN = r"^[a-z][a-z0-9_]*$"

M = TypeVar("M", bound=BaseModel)


class CatalogError(ValueError):
    """The catalog or a local codes file is invalid; the message names the file and the line."""


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CodeSpec(_Spec):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str = ""
    family: str | None = None  # restrict results under this code to one unit family
    confirmed: str = ""  # where the code was confirmed


class VariantSpec(_Spec):
    unit: str = Field(min_length=1)
    same_as: str | None = None  # declared equivalence the UCUM library cannot prove
    note: str = ""


class MolarMass(_Spec):
    g_per_mol: float = Field(gt=0)
    source: str = Field(min_length=1)


class FamilySpec(_Spec):
    canonical: str = Field(min_length=1)
    variants: list[str | VariantSpec] = Field(min_length=1)
    molar_mass: MolarMass | None = None


class TrendSpec(_Spec):
    relative_change: float | None = Field(default=None, ge=0)
    absolute_change: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> TrendSpec:
        if (self.relative_change is None) == (self.absolute_change is None):
            raise ValueError("give exactly one of relative_change and absolute_change")
        return self


class AnalyteSpec(_Spec):
    display: str = Field(min_length=1)
    freshness_hours: float = Field(gt=0)
    freshness_source: str = Field(min_length=1)
    codes: list[CodeSpec] = Field(min_length=1)
    families: dict[str, FamilySpec] = Field(min_length=1)
    trend: TrendSpec | None = None

    @model_validator(mode="after")
    def _code_families_exist(self) -> AnalyteSpec:
        for code in self.codes:
            if code.family is not None and code.family not in self.families:
                raise ValueError(f"code {code.code!r} names unknown family {code.family!r}")
        return self


class LocalConcept(_Spec):
    code: str = Field(min_length=1)
    display: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    why: str = Field(min_length=1)


class LocalCodeSystem(_Spec):
    url: str = Field(min_length=1)
    description: str = ""
    concepts: list[LocalConcept]


class CatalogSpec(_Spec):
    schema_version: Literal[1]
    local_code_system: LocalCodeSystem
    code_system_aliases: dict[str, str] = {}
    ucum_systems: list[str] = Field(min_length=1)
    unit_aliases: dict[str, str] = {}
    trend_defaults: TrendSpec
    analytes: dict[str, AnalyteSpec] = Field(min_length=1)


class LocalCode(_Spec):
    analyte: str = Field(min_length=1)
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    family: str | None = None
    display: str = ""


class LocalCodesFile(_Spec):
    """A hospital's own codes (any system) for catalog analytes, plus unit spellings."""

    codes: list[LocalCode] = []
    unit_aliases: dict[str, str] = {}


def read_yaml(path: Path | str, text: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text into data and its node tree (for line numbers)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise CatalogError(f"{path}: {where}not valid YAML ({exc.__class__.__name__})") from exc
    return data, node


def line_of(root: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the deepest YAML node that `loc` (a pydantic error path) reaches."""
    if root is None:
        return None
    node, line = root, root.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def describe(path: Path | str, root: yaml.Node | None, loc: tuple[str | int, ...], msg: str) -> str:
    line = line_of(root, loc)
    where = ".".join(str(p) for p in loc)
    return f"{path}: {f'line {line}: ' if line else ''}{where + ': ' if where else ''}{msg}"


def validate(model: type[M], data: Any, path: Path | str, root: yaml.Node | None) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = describe(path, root, tuple(first["loc"]), first["msg"])
        more = exc.error_count() - 1
        raise CatalogError(message + (f" (and {more} more problems)" if more else "")) from exc
