"""Pydantic schemas of catalog.yaml and of a hospital's local codes file, and YAML reading.

Files are read with cds_service.yamlfile; errors are `CatalogError`s naming the file and, where
it can be found, the YAML line of the offending entry.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cds_service.yamlfile import ConfigFileError

ANALYTE_ID_PATTERN = r"^[a-z][a-z0-9_]*$"

M = TypeVar("M", bound=BaseModel)


class CatalogError(ConfigFileError):
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


class PlausibleRange(_Spec):
    """Where a real result can lie, in canonical units; outside it is a data error."""

    low: float
    high: float
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> PlausibleRange:
        if not self.low < self.high:
            raise ValueError("plausible: low must be below high")
        return self


class FamilySpec(_Spec):
    canonical: str = Field(min_length=1)
    variants: list[str | VariantSpec] = Field(min_length=1)
    plausible: PlausibleRange
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
