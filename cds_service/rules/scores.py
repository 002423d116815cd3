"""Clinical scores and criteria sets: ASTCT CRS grade, HLH-2004, HScore, MAS-2016, cHIS.

Pure functions of the lab evidence and the chart context; every cut-off, point and source comes
from scores.yaml (validated at start-up against the analyte catalog, with file-and-line errors).
Each score says the value it found, the value used for each item, the items it could not judge
and its source. Unknown items never make a criterion true: a criteria set counts them apart, a
point score counts them 0 and says its value is a lower bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cds_service.context.models import ChartContext
from cds_service.evidence import Catalog, Evidence
from cds_service.evidence.models import LabValue
from cds_service.evidence.values import format_number
from cds_service.yamlfile import ConfigFileError, YamlDocument

Op = Literal[">", ">=", "<", "<="]
ScoreId = Literal["astct", "hlh2004", "hscore", "mas2016", "chis"]


class ScoresError(ConfigFileError):
    """scores.yaml is invalid; the message names the file and the line."""


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabTest(_Spec):
    analyte: str
    op: Op
    value: float
    unit: str
    family: str | None = None
    pick: Literal["latest", "max", "min"] = "latest"


class RatioTest(_Spec):
    ratio: tuple[str, str]
    op: Op
    value: float


class AgeBand(_Spec):
    """Systolic pressure below `value` (+ `per_year` x the age in whole years) is hypotension
    in this age band: ages below `below_days` days, or below `below_years` years."""

    label: str
    value: float = Field(gt=0)
    per_year: float = 0
    below_days: int | None = Field(default=None, gt=0)
    below_years: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_bound(self) -> AgeBand:
        if (self.below_days is None) == (self.below_years is None):
            raise ValueError("an age band has exactly one of below_days, below_years")
        return self


class ChildHypotension(_Spec):
    label: str  # the rule set as the card names it: "PALS, AHA 2010"
    source: str
    population: str
    analyte: str
    unit: str
    bands: list[AgeBand] = Field(min_length=1)


class Hypotension(_Spec):
    any: list[LabTest] = Field(min_length=1)  # adults, and patients of unrecorded age
    source: str
    population: str
    adult_from_years: int = Field(gt=0)
    children: ChildHypotension

    @model_validator(mode="after")
    def _children_covered(self) -> Hypotension:
        last = self.children.bands[-1].below_years
        if last != self.adult_from_years:
            raise ValueError(
                "the last age band of `children` must end at `adult_from_years` "
                f"({self.adult_from_years}), so that every child has a cut-off"
            )
        return self


class ScoreAges(_Spec):
    """The ages a score was derived or validated in. A setting state decided by the score is
    not applied to a patient recorded as younger than `min_years` (the card says so and what
    applies, `outside`); without `min_years` the score holds at all ages."""

    min_years: int | None = Field(default=None, ge=1)
    source: str
    population: str  # in words, for the card: "adults with suspected reactive HLH"
    outside: str | None = None  # what applies instead, for a patient outside the ages
    convention: str | None = None  # what the sources do not state: for clinical review

    @model_validator(mode="after")
    def _outside_with_limit(self) -> ScoreAges:
        if (self.min_years is None) != (self.outside is None):
            raise ValueError("`min_years` and `outside` go together")
        return self


class Criterion(_Spec):
    label: str
    test: LabTest | RatioTest | None = None
    any: list[LabTest] | None = None
    at_least: int | None = None
    of: list[LabTest] | None = None
    clinical: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Criterion:
        kinds = [self.test is not None, self.any is not None, self.of is not None, self.clinical]
        if sum(kinds) != 1:
            raise ValueError(
                "give exactly one of `test`, `any`, `of` (with `at_least`), `clinical`"
            )
        if (self.of is None) != (self.at_least is None):
            raise ValueError("`of` and `at_least` go together")
        return self


class Band(_Spec):
    points: float
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None
    otherwise: bool = False

    @model_validator(mode="after")
    def _one_bound(self) -> Band:
        bounds = [self.above, self.at_least, self.below, self.at_most]
        if sum(b is not None for b in bounds) + self.otherwise != 1:
            raise ValueError("a band has exactly one of above, at_least, below, at_most, otherwise")
        return self

    def holds(self, x: float) -> bool:
        if self.otherwise:
            return True
        if self.above is not None:
            return x > self.above
        if self.at_least is not None:
            return x >= self.at_least
        if self.below is not None:
            return x < self.below
        return self.at_most is not None and x <= self.at_most


class PointItem(_Spec):
    label: str
    clinical: bool = False
    max_points: float | None = None
    analyte: str | None = None
    unit: str | None = None
    family: str | None = None
    pick: Literal["latest", "max", "min"] = "latest"
    bands: list[Band] | None = None
    lines: list[LabTest] | None = None
    points_by_lines: list[float] | None = None

    @model_validator(mode="after")
    def _shape(self) -> PointItem:
        if self.clinical:
            if self.max_points is None:
                raise ValueError("a clinical item needs `max_points` (its weight when present)")
        elif self.lines is not None:
            if self.points_by_lines is None or len(self.points_by_lines) != len(self.lines) + 1:
                raise ValueError("`points_by_lines` needs one entry per count 0..len(lines)")
        elif self.analyte is None or self.bands is None or self.unit is None:
            raise ValueError("a lab item needs `analyte`, `unit` and `bands`")
        elif not self.bands[-1].otherwise:
            raise ValueError("the last band must be `otherwise`")
        return self


class Source(_Spec):
    citation: str
    doi: str | None = None
    pmid: str | None = None
    population: str
    verified: str


class AstctSpec(_Spec):
    label: str
    source: str
    ages: ScoreAges
    verify: str | None = None  # what must be confirmed before relying on it
    fever: LabTest
    fever_not_required_after: list[str]
    fever_not_required_for_hours: float = Field(gt=0)
    fever_run_gap_hours: float = Field(gt=0)
    hypotension: Hypotension
    not_counted_as_second_vasopressor: list[str]
    oxygen_grades: dict[str, int]
    oxygen_fresh_hours: float = Field(gt=0)
    hypoxia_on_room_air: LabTest


class CriteriaSpec(_Spec):
    label: str
    source: str
    ages: ScoreAges
    verify: str | None = None  # what must be confirmed before relying on it
    needed: int | None = None
    cut_off: float | None = None
    criteria: dict[str, Criterion]


class HScoreSpec(_Spec):
    label: str
    source: str
    ages: ScoreAges
    verify: str | None = None  # what must be confirmed before relying on it
    cut_off: float
    items: dict[str, PointItem]
    probability: list[tuple[float, float]] = Field(min_length=2)


class MasSpec(_Spec):
    label: str
    source: str
    ages: ScoreAges
    verify: str | None = None  # what must be confirmed before relying on it
    requires_setting: str
    fever: LabTest
    ferritin: LabTest
    at_least: int
    of: list[LabTest]


class ScoresSpec(_Spec):
    schema_version: Literal[1]
    sources: dict[str, Source]
    astct: AstctSpec = Field(alias="astct")
    hlh2004: CriteriaSpec
    hscore: HScoreSpec
    mas2016: MasSpec
    chis: CriteriaSpec

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("scores"), dict):
            return {k: v for k, v in data.items() if k != "scores"} | data["scores"]
        return data


ScoreBook = ScoresSpec
Known = Annotated[bool | None, "True / False / None = unknown"]


@dataclass(frozen=True)
class ScoreItem:
    """One item of a score as it was judged."""

    id: str
    label: str
    value: str  # the value used, for people: "39.2 Cel (Observation/t1)", "unknown"
    met: bool | None = None  # criteria sets: met / not met / unknown
    points: float | None = None  # point scores: points given (None: unknown, counted 0)


@dataclass(frozen=True)
class ScoreResult:
    id: str
    label: str
    value: float | None  # grade, criteria met, points, 1/0 classification; None: cannot judge
    inputs: tuple[ScoreItem, ...]
    missing: tuple[str, ...]  # labels of the items that could not be judged
    source: str  # source id in scores.yaml
    text: str  # one line for people
    extra: Mapping[str, float | bool | None] = field(default_factory=dict)
    ages: ScoreAges | None = None  # the ages the score holds for (scores.yaml)
    verify: str | None = None  # scores.yaml: what was not confirmed from the source


def _text() -> str:
    return resources.files("cds_service.rules").joinpath("scores.yaml").read_text("utf-8")


@lru_cache(maxsize=4)
def load_scores(catalog: Catalog) -> ScoreBook:
    """scores.yaml, validated, with every lab test checked against the analyte catalog."""
    try:
        document = YamlDocument("cds_service/rules/scores.yaml", _text())
        book = document.validate(ScoresSpec)
    except ConfigFileError as exc:
        raise ScoresError(str(exc)) from None
    _check(book, catalog, document)
    return book


def _check(book: ScoreBook, catalog: Catalog, document: YamlDocument) -> None:
    def fail(loc: tuple[str | int, ...], message: str) -> None:
        raise ScoresError(str(document.error(("scores", *loc), message)))

    def test(t: LabTest, loc: tuple[str | int, ...]) -> None:
        if t.analyte not in catalog.analyte_ids:
            fail(loc, f"unknown analyte {t.analyte!r}")
        families = catalog.analyte(t.analyte).families
        family = families.get(t.family) if t.family else next(iter(families.values()))
        if family is None:
            fail(loc, f"unknown family {t.family!r} of {t.analyte!r}")
        elif family.canonical != t.unit:
            fail(loc, f"unit {t.unit!r} is not the canonical unit {family.canonical!r}")

    for name in ("astct", "hlh2004", "hscore", "mas2016", "chis"):
        spec = getattr(book, name)
        for loc, source in (
            ((name, "source"), spec.source),
            ((name, "ages", "source"), spec.ages.source),
        ):
            if source not in book.sources:
                fail(loc, f"unknown source {source!r}")
    test(book.astct.fever, ("astct", "fever"))
    test(book.astct.hypoxia_on_room_air, ("astct", "hypoxia_on_room_air"))
    for i, t in enumerate(book.astct.hypotension.any):
        test(t, ("astct", "hypotension", "any", i))
    children = book.astct.hypotension.children
    if children.source not in book.sources:
        fail(("astct", "hypotension", "children", "source"), f"unknown source {children.source!r}")
    test(
        LabTest(analyte=children.analyte, op="<", value=0, unit=children.unit),
        ("astct", "hypotension", "children"),
    )
    for name in ("hlh2004", "chis"):
        for cid, criterion in getattr(book, name).criteria.items():
            loc = (name, "criteria", cid)
            if isinstance(criterion.test, LabTest):
                test(criterion.test, (*loc, "test"))
            elif isinstance(criterion.test, RatioTest):
                for analyte in criterion.test.ratio:
                    if analyte not in catalog.analyte_ids:
                        fail((*loc, "test"), f"unknown analyte {analyte!r}")
            for key in ("any", "of"):
                for i, t in enumerate(getattr(criterion, key) or []):
                    test(t, (*loc, key, i))
    for iid, item in book.hscore.items.items():
        loc = ("hscore", "items", iid)
        if item.analyte is not None and item.unit is not None:
            test(LabTest(analyte=item.analyte, op=">", value=0, unit=item.unit), loc)
        for i, t in enumerate(item.lines or []):
            test(t, (*loc, "lines", i))
    for key in ("fever", "ferritin"):
        test(getattr(book.mas2016, key), ("mas2016", key))
    for i, t in enumerate(book.mas2016.of):
        test(t, ("mas2016", "of", i))


def score_analytes(book: ScoreBook) -> frozenset[str]:
    """Every analyte a score reads (what the prefetch templates must ask for)."""
    tests: list[LabTest] = [book.astct.fever, *book.astct.hypotension.any]
    read: set[str] = {book.astct.hypotension.children.analyte}
    for spec in (book.hlh2004, book.chis):
        for criterion in spec.criteria.values():
            if isinstance(criterion.test, LabTest):
                tests.append(criterion.test)
            elif isinstance(criterion.test, RatioTest):
                read.update(criterion.test.ratio)
            tests += [*(criterion.any or []), *(criterion.of or [])]
    for item in book.hscore.items.values():
        if item.analyte is not None:
            read.add(item.analyte)
        tests += item.lines or []
    tests += [book.mas2016.fever, book.mas2016.ferritin, *book.mas2016.of]
    return frozenset(read | {t.analyte for t in tests})


def _compare(x: float, op: Op, y: float) -> bool:
    return {">": x > y, ">=": x >= y, "<": x < y, "<=": x <= y}[op]


def _pick(evidence: Evidence, analyte: str, family: str | None, pick: str) -> LabValue | None:
    found = evidence.get(analyte)
    if found is None:
        return None
    since = evidence.as_of - timedelta(hours=found.freshness_hours)
    values = [
        v
        for v in found.history
        if v.effective >= since
        and v.effective <= evidence.as_of
        and (family is None or v.family == family)
    ]
    if not values:
        return None
    if pick == "max":
        return max(values, key=lambda v: v.value)
    if pick == "min":
        return min(values, key=lambda v: v.value)
    return values[0]  # history is newest first


def _shown(value: LabValue) -> str:
    return value.reported or f"{format_number(value.value)} {value.unit}"


def _judge(evidence: Evidence, t: LabTest) -> tuple[bool | None, str]:
    value = _pick(evidence, t.analyte, t.family, t.pick)
    if value is None:
        return None, f"{t.analyte}: no recent result"
    return _compare(value.value, t.op, t.value), f"{t.analyte} {_shown(value)}"


def _judge_ratio(evidence: Evidence, t: RatioTest) -> tuple[bool | None, str]:
    top, bottom = (_pick(evidence, a, None, "latest") for a in t.ratio)
    if top is None or bottom is None or bottom.value <= 0:
        return None, f"{t.ratio[0]}/{t.ratio[1]}: no recent pair of results"
    ratio = top.value / bottom.value
    return _compare(ratio, t.op, t.value), f"{t.ratio[0]}/{t.ratio[1]} {ratio:.1f}"


def _any(results: Sequence[tuple[bool | None, str]]) -> bool | None:
    if any(r is True for r, _ in results):
        return True
    return None if any(r is None for r, _ in results) else False


def _at_least(results: Sequence[tuple[bool | None, str]], n: int) -> bool | None:
    met = sum(r is True for r, _ in results)
    unknown = sum(r is None for r, _ in results)
    if met >= n:
        return True
    return None if met + unknown >= n else False


def _criterion(evidence: Evidence, cid: str, c: Criterion) -> ScoreItem:
    if c.clinical:
        return ScoreItem(cid, c.label, "not in the lab data", None)
    if c.test is not None:
        met, shown = (
            _judge(evidence, c.test)
            if isinstance(c.test, LabTest)
            else _judge_ratio(evidence, c.test)
        )
        return ScoreItem(cid, c.label, shown, met)
    tests = c.any if c.any is not None else c.of or []
    results = [_judge(evidence, t) for t in tests]
    met = _any(results) if c.any is not None else _at_least(results, c.at_least or 0)
    return ScoreItem(cid, c.label, "; ".join(shown for _, shown in results), met)


def criteria_count(spec: CriteriaSpec, score_id: str, evidence: Evidence) -> ScoreResult:
    """HLH-2004 (5 of 8) and cHIS: criteria met, with the unknown ones listed."""
    items = tuple(_criterion(evidence, cid, c) for cid, c in spec.criteria.items())
    met = sum(item.met is True for item in items)
    unknown = tuple(item.label for item in items if item.met is None)
    bar = spec.needed if spec.needed is not None else spec.cut_off
    reached: bool | None = None
    if bar is not None:
        reached = True if met >= bar else (None if met + len(unknown) >= bar else False)
    of = f"{met} of {len(items)} criteria met"
    tail = f"; {len(unknown)} unknown" if unknown else ""
    verdict = {True: "threshold reached", False: "threshold not reached", None: "undecided"}
    text = f"{spec.label}: {of}{tail} ({verdict[reached]}, needs {format_number(float(bar or 0))})"
    return ScoreResult(
        id=score_id,
        label=spec.label,
        value=float(met),
        inputs=items,
        missing=unknown,
        source=spec.source,
        text=text,
        extra={"reached": reached, "needed": float(bar) if bar is not None else None},
    )


def hscore(spec: HScoreSpec, evidence: Evidence) -> ScoreResult:
    """HScore points (unknown items 0: a lower bound), its upper bound and the probability."""
    items: list[ScoreItem] = []
    upper_extra = 0.0
    for iid, item in spec.items.items():
        if item.clinical:
            items.append(ScoreItem(iid, item.label, "not in the lab data", points=None))
            upper_extra += item.max_points or 0
        elif item.lines is not None and item.points_by_lines is not None:
            results = [_judge(evidence, t) for t in item.lines]
            known = sum(r is True for r, _ in results)
            unknown = sum(r is None for r, _ in results)
            shown = "; ".join(s for _, s in results)
            table = item.points_by_lines
            if unknown == len(results):
                items.append(ScoreItem(iid, item.label, shown, points=None))
                upper_extra += max(table)
                continue
            items.append(ScoreItem(iid, item.label, shown, points=table[known]))
            if unknown:
                upper_extra += table[known + unknown] - table[known]
        else:
            value = _pick(evidence, item.analyte or "", item.family, item.pick)
            if value is None:
                items.append(ScoreItem(iid, item.label, "no recent result", points=None))
                upper_extra += max(b.points for b in item.bands or [])
                continue
            band = next(b for b in item.bands or [] if b.holds(value.value))
            items.append(ScoreItem(iid, item.label, _shown(value), points=band.points))
    total = float(sum(i.points or 0 for i in items))
    missing = tuple(i.label for i in items if i.points is None)
    partial = tuple(
        i.label for i in items if i.points is not None and "no recent result" in i.value
    )
    probability = hscore_probability(spec, total)
    bound = "≥ " if missing or partial else ""
    rows = sorted(spec.probability)
    if total < rows[0][0]:  # the paper's table starts at "< 1 %"
        chance = f"< {format_number(rows[0][1])} %"
    elif total >= rows[-1][0]:
        chance = f"> {format_number(rows[-1][1])} %"
    else:
        chance = f"{bound}{probability:.0f} %"
    text = (
        f"HScore {bound}{format_number(total)} (cut-off {format_number(spec.cut_off)}; "
        f"probability {chance})"
    )
    if missing:
        text += f"; unknown, counted 0: {', '.join(missing)}"
    return ScoreResult(
        id="hscore",
        label=spec.label,
        value=total,
        inputs=tuple(items),
        missing=missing + partial,
        source=spec.source,
        text=text,
        extra={
            "probability": probability,
            "upper_bound": total + upper_extra,
            "lower_bound": bool(missing or partial),
            "cut_off": spec.cut_off,
        },
    )


def hscore_probability(spec: HScoreSpec, points: float) -> float:
    """Probability (%) from the paper's table, linear between its rows; clamped at its ends."""
    table = sorted(spec.probability)
    if points <= table[0][0]:
        return table[0][1] if points == table[0][0] else min(table[0][1], 1.0)
    for (x0, y0), (x1, y1) in pairwise(table):
        if points <= x1:
            return y0 + (y1 - y0) * (points - x0) / (x1 - x0)
    return table[-1][1]


def astct_grade(
    spec: AstctSpec,
    evidence: Evidence,
    chart: ChartContext,
    cut_short: frozenset[str] = frozenset(),
) -> ScoreResult:
    """ASTCT CRS grade 0-4 (Lee 2019); None when fever is required and no temperature is known.
    `cut_short`: analytes whose older results may be missing (the fever's duration may then be
    a lower bound: see `fever_days`)."""
    fever, fever_shown = _judge(evidence, spec.fever)
    exposure = chart.iec_exposure()
    given = [
        e
        for drug in spec.fever_not_required_after
        for e in chart.given(drug, since=exposure.when if exposure else None)
        if e.source == "administration"
    ]
    waiver_from = evidence.as_of - timedelta(hours=spec.fever_not_required_for_hours)
    treated = [e for e in given if e.when is not None and e.when >= waiver_from]
    # Given before the waiver's window: fever is required again, and the grade says why.
    lapsed_drugs = sorted({e.drug for e in given} - {e.drug for e in treated})
    febrile_days, days_lower = fever_days(
        spec, evidence, exposure.when if exposure else None, spec.fever.analyte in cut_short
    )
    pressors = {v.drug for v in chart.vasopressors}
    counted = pressors - set(spec.not_counted_as_second_vasopressor)
    bp_tests, bp_rule = hypotension_tests(spec.hypotension, chart)
    low_bp = [_judge(evidence, t) for t in bp_tests]
    # Systolic and mean pressure measure the same thing: one normal reading is enough to say
    # "no hypotension" (unlike criteria whose alternatives are different findings).
    known_bp = [r for r, _ in low_bp if r is not None]
    hypotension = any(known_bp) if known_bp else None
    if len(counted) >= 2:
        circulation, circ_shown = 4, f"{len(counted)} vasopressors ({', '.join(sorted(pressors))})"
    elif pressors:
        circulation, circ_shown = 3, f"vasopressor ({', '.join(sorted(pressors))})"
    elif hypotension is True:
        circulation, circ_shown = (
            2,
            "hypotension without vasopressors: " + "; ".join(s for _, s in low_bp),
        )
    elif hypotension is False:
        circulation, circ_shown = 0, "no hypotension: " + "; ".join(s for _, s in low_bp)
    else:
        circulation, circ_shown = None, "blood pressure: no recent result"
    if bp_rule and not pressors:
        circ_shown += f" ({bp_rule})"
    oxygen = chart.oxygen
    fresh_o2 = (
        oxygen is not None
        and oxygen.when is not None
        and oxygen.when >= evidence.as_of - timedelta(hours=spec.oxygen_fresh_hours)
    )
    respiration: int | None = None
    o2_shown = "oxygen support: not recorded recently"
    # A newer device record the catalog cannot read may be more support than the level read
    # (a mask, or high flow at the same flow): the respiratory grade is then a lower bound.
    respiration_lower = False
    room_air_hypoxia: LabValue | None = None
    if fresh_o2 and oxygen is not None and oxygen.level in spec.oxygen_grades:
        respiration = spec.oxygen_grades[oxygen.level]
        flow = f", {format_number(oxygen.flow_l_min)} L/min" if oxygen.flow_l_min else ""
        respiration_lower = oxygen.device_unread
        o2_shown = f"{oxygen.level}{flow}" + (
            " (a newer device record could not be read)" if respiration_lower else ""
        )
        if respiration == 0:
            room_air_hypoxia = hypoxia = _room_air_hypoxia(spec, evidence, oxygen.when)
            if hypoxia is not None:
                # ASTCT grades the support given, not the saturation: unknown, never a grade
                # inferred from one reading (a patient's usual saturation may be this low).
                respiration = None
                o2_shown = (
                    f"SpO₂ {_shown(hypoxia)} on room air: it may need oxygen; chart the "
                    "support given"
                )
    drugs_shown = ", ".join(sorted({e.drug for e in treated})) or "none"
    inputs: tuple[ScoreItem, ...] = (
        ScoreItem("fever", "Fever >= 38.0 °C", fever_shown, fever),
        ScoreItem("treated", "Tocilizumab or corticosteroids given", drugs_shown, bool(treated)),
        ScoreItem("circulation", "Hypotension / vasopressors", circ_shown, None, circulation),
        ScoreItem("oxygen", "Oxygen support", o2_shown, None, respiration),
    )
    duration = None
    if febrile_days is not None and days_lower:
        duration = (
            f"≥ {febrile_days:.1f} days" if febrile_days >= 0.05 else "an unknown time"
        ) + " (older temperatures were not received)"
    elif febrile_days:
        duration = f"{febrile_days:.1f} days"
    if duration is not None:
        inputs += (ScoreItem("fever_days", "Fever duration", duration),)
    window = format_number(spec.fever_not_required_for_hours / 24)
    waives = "waive" if len(lapsed_drugs) > 1 else "waives"
    no_waiver = (
        f"; {' and '.join(lapsed_drugs)} given more than {window} days ago no longer {waives} fever"
        if lapsed_drugs
        else ""
    )
    oxygen_missing = (
        f"oxygen support given (SpO₂ {_shown(room_air_hypoxia)} on room air)"
        if room_air_hypoxia is not None
        else "oxygen support"
    )
    missing = tuple(
        label
        for label, known in (
            ("temperature", fever is not None),
            ("blood pressure", circulation is not None),
            (oxygen_missing, respiration is not None),
        )
        if not known
    )
    base = {"source": spec.source, "id": "astct", "label": spec.label, "inputs": inputs}
    days = {"fever_days": febrile_days, "fever_days_lower_bound": days_lower}
    if fever is None and not treated:
        return ScoreResult(
            **base,  # type: ignore[arg-type]
            value=None,
            missing=missing,
            text="ASTCT CRS grade unknown: no recent temperature (fever is required)" + no_waiver,
            extra={"lower_bound": True, **days},
        )
    if fever is False and not treated:
        recent = "recent " if lapsed_drugs else ""
        signs = [
            name
            for name, present in (
                ("hypotension", (circulation or 0) >= 2),
                ("hypoxia", (respiration or 0) >= 2 or room_air_hypoxia is not None),
            )
            if present
        ]
        if lapsed_drugs and signs:
            # The window is a convention: the drug's effect can outlast it.
            masks = "they mask" if len(lapsed_drugs) > 1 else "it masks"
            no_waiver += (
                f"; the {' and '.join(signs)} without fever may still be CRS that {masks}, "
                "IEC-HS or an infection"
            )
        return ScoreResult(
            **base,  # type: ignore[arg-type]
            value=0.0,
            missing=missing,
            text=f"ASTCT: no CRS grade (no fever >= 38.0 °C, and no {recent}tocilizumab or "
            f"steroids{no_waiver})",
            extra={"lower_bound": False, **days},
        )
    grade = max(1 if fever else 0, circulation or 0, respiration or 0)
    lower = circulation is None or respiration is None or respiration_lower
    parts = [fever_shown if fever else "fever not required after " + drugs_shown]
    if fever and duration is not None and (days_lower or (febrile_days or 0) > 1):
        parts[0] += f", febrile for {duration}"
    parts += [circ_shown, o2_shown]
    bound = "≥ " if lower else ""
    return ScoreResult(
        **base,  # type: ignore[arg-type]
        value=float(grade),
        missing=missing,
        text=f"ASTCT CRS grade {bound}{grade} ({'; '.join(parts)})",
        extra={"lower_bound": lower, **days},
    )


def _room_air_hypoxia(
    spec: AstctSpec, evidence: Evidence, since: datetime | None
) -> LabValue | None:
    """The newest saturation below the room-air cut-off, measured no earlier than the room-air
    record (an older one may have been measured on other support)."""
    t = spec.hypoxia_on_room_air
    value = _pick(evidence, t.analyte, t.family, "latest")
    if value is None or (since is not None and value.effective < since):
        return None
    return value if _compare(value.value, t.op, t.value) else None


def fever_days(
    spec: AstctSpec, evidence: Evidence, since: datetime | None, cut_short: bool = False
) -> tuple[float | None, bool]:
    """How long the current fever has lasted, in days, and whether that is a lower bound.

    From the first febrile reading of the run that ends with the newest one (a run breaks where
    `fever_run_gap_hours` pass without a febrile reading; afebrile readings between spikes do
    not break it); 0 without a fever now (within the temperature's freshness window), None
    without a recent temperature; `since` (the infusion) bounds it. When older temperatures
    may be missing (`cut_short`) and the run reaches back to within a gap of the oldest reading
    received, an unseen older spike could lengthen it: the duration is then a lower bound."""
    found = evidence.get(spec.fever.analyte)
    if found is None:
        return None, False
    febrile = [
        v.effective
        for v in found.history  # newest first
        if v.effective <= evidence.as_of
        and (since is None or v.effective >= since)
        and (spec.fever.family is None or v.family == spec.fever.family)
        and _compare(v.value, spec.fever.op, spec.fever.value)
    ]
    fresh_from = evidence.as_of - timedelta(hours=found.freshness_hours)
    if not febrile or febrile[0] < fresh_from:
        return (0.0 if found.latest.effective >= fresh_from else None), False
    gap = timedelta(hours=spec.fever_run_gap_hours)
    onset = febrile[0]
    for when in febrile[1:]:
        if onset - when > gap:
            break
        onset = when
    # The search is newest first: a reading received from before `reach` shows that none
    # after it is missing.
    reach = onset - gap if since is None else max(onset - gap, since)
    lower = cut_short and found.history[-1].effective > reach
    return (febrile[0] - onset).total_seconds() / 86400, lower


_BP_NAMES = {"sbp": "systolic", "map": "mean"}


def hypotension_tests(spec: Hypotension, chart: ChartContext) -> tuple[list[LabTest], str]:
    """The blood-pressure tests for this patient's age, and what the card says about them:
    the child's age band and cut-off; for a patient of unrecorded age, that the adult cut-offs
    were applied without knowing the age; for an adult, nothing (the grade names the values)."""
    age = chart.age_years
    if age is None:
        shown = " or ".join(
            f"{_BP_NAMES.get(t.analyte, t.analyte)} {t.op} {format_number(t.value)} mmHg"
            for t in spec.any
        )
        return list(spec.any), f"adult cut-offs applied, {shown}; {chart.no_age()}"
    if age >= spec.adult_from_years:
        return list(spec.any), ""
    children = spec.children
    # A birth year alone: the band of the oldest age it allows, whose cut-off is the highest
    # (the PALS cut-offs rise with age), so hypotension is never understated.
    years, days = chart.oldest_age or (age, chart.age_days)
    if years >= spec.adult_from_years:
        return list(spec.any), ""
    band, cut = _age_band(children, years, days)
    test = LabTest(analyte=children.analyte, op="<", value=cut, unit=children.unit)
    name = _BP_NAMES.get(children.analyte, children.analyte)
    oldest = " (the band of the oldest age its birth date allows)" if chart.oldest_age else ""
    return [test], (
        f"age-appropriate cut-off, the patient is {chart.age_text()}{oldest}: {name} < "
        f"{format_number(cut)} mmHg, {band.label} ({children.label})"
    )


def _age_band(spec: ChildHypotension, years: int, days: int | None) -> tuple[AgeBand, float]:
    """The first band the age falls in, and its cut-off. A band in days needs the age in days:
    without it the band is passed over (the next one, in years, is the higher cut-off)."""
    for band in spec.bands:
        if band.below_days is not None:
            if days is not None and days < band.below_days:
                return band, band.value
        elif band.below_years is not None and years < band.below_years:
            return band, band.value + band.per_year * years
    last = spec.bands[-1]  # not reached: the bands end at the adult age (checked on load)
    return last, last.value + last.per_year * years


def mas2016(spec: MasSpec, evidence: Evidence, chart: ChartContext) -> ScoreResult:
    """MAS-2016 (Ravelli): 1 classified, 0 not, None undecided or outside its population."""
    fever, fever_shown = _judge(evidence, spec.fever)
    ferritin, ferritin_shown = _judge(evidence, spec.ferritin)
    others = [_judge(evidence, t) for t in spec.of]
    two = _at_least(others, spec.at_least)
    # "Known or suspected" sJIA (Ravelli 2016): a provisional diagnosis counts here.
    diagnosis = chart.has(spec.requires_setting) or any(  # type: ignore[arg-type]
        f.setting == spec.requires_setting for f in chart.suspected
    )
    inputs = (
        ScoreItem(
            "diagnosis",
            "Known or suspected sJIA / Still's disease",
            "recorded" if diagnosis else "not recorded",
            diagnosis,
        ),
        ScoreItem("fever", "Febrile", fever_shown, fever),
        ScoreItem("ferritin", "Ferritin > 684 ng/mL", ferritin_shown, ferritin),
        ScoreItem(
            "two_of",
            f"{spec.at_least} of platelets, AST, triglycerides, fibrinogen",
            "; ".join(s for _, s in others),
            two,
        ),
    )
    missing = tuple(i.label for i in inputs if i.met is None)
    base = {"id": "mas2016", "label": spec.label, "inputs": inputs, "source": spec.source}
    if not diagnosis:
        return ScoreResult(
            **base,  # type: ignore[arg-type]
            value=None,
            missing=("sJIA / Still's disease diagnosis", *missing),
            text="MAS-2016 not applied: it classifies MAS only in known or suspected sJIA",
        )
    parts = [fever, ferritin, two]
    if all(p is True for p in parts):
        value, verdict = 1.0, "criteria met"
    elif any(p is False for p in parts):
        value, verdict = 0.0, "criteria not met"
    else:
        value, verdict = None, "undecided"
    lacking = f" (unknown: {', '.join(missing)})" if missing and value is None else ""
    return ScoreResult(
        **base,  # type: ignore[arg-type]
        value=value,
        missing=missing,
        text=f"MAS-2016: {verdict}{lacking}",
    )


def compute_scores(
    book: ScoreBook,
    evidence: Evidence,
    chart: ChartContext,
    cut_short: frozenset[str] = frozenset(),
) -> dict[str, ScoreResult]:
    """Every score, by id (astct, hlh2004, hscore, mas2016, chis). `cut_short`: the analytes
    whose older results may be missing (read only in part)."""
    hlh = criteria_count(book.hlh2004, "hlh2004", evidence)
    if any(f.kind == "primary" for f in chart.findings("hlh")):
        # A molecular diagnosis meets HLH-2004 by itself, whatever the count (Henter 2007).
        hlh = replace(
            hlh,
            text=hlh.text + "; HLH-2004 is met by the recorded familial (primary) HLH diagnosis",
        )
    results = {
        "astct": astct_grade(book.astct, evidence, chart, cut_short),
        "hlh2004": hlh,
        "hscore": hscore(book.hscore, evidence),
        "mas2016": mas2016(book.mas2016, evidence, chart),
        "chis": criteria_count(book.chis, "chis", evidence),
    }
    return {
        sid: replace(r, ages=getattr(book, sid).ages, verify=getattr(book, sid).verify)
        for sid, r in results.items()
    }
