"""The card templates (top-level cards/ folder): loaded, compiled and checked once at start-up."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateError, meta
from jinja2.runtime import Context
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from cds_service.rules.assessment import Subtype
from cds_service.rules.engine import number
from cds_service.yamlfile import ConfigFileError, YamlDocument

# One card type per assessed pattern, plus the two cards that are not a pattern.
CARD_TYPES = (
    *get_args(Subtype),
    "setting-advice",
    "order-mismatch",
    "order-caution",
    "data-incomplete",
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")
# Control and bidirectional-override characters: never shown in a plain-text field.
_UNSAFE_IN_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicSpec(_Spec):
    # Epic keeps a clinician's override against this code: letters and digits only, at most 100
    # characters, and unchanged while the card's content stays the same.
    code: str = Field(pattern=r"^[A-Za-z0-9]{1,100}$")
    display: str = Field(min_length=1)


class SuggestionSpec(_Spec):
    label: str = Field(min_length=1)
    description: str = Field(min_length=1)


class CardSpec(_Spec):
    topic: TopicSpec
    indicator: Literal["info", "warning", "critical"]
    summary: str = Field(min_length=1)
    detail: str = Field(min_length=1)
    suggestion: SuggestionSpec | None = None
    # A second suggestion (order-mismatch: "order the alternative" beside "remove the draft"):
    # one action per suggestion is what Epic and the sandbox both apply.
    alternative: SuggestionSpec | None = None
    override_reasons: list[str] = []


class CommonSpec(_Spec):
    override_reason_system: str = Field(min_length=1)
    override_reasons: dict[str, str] = Field(min_length=1)
    notice: str = Field(min_length=1)
    source_label: str = Field(min_length=1)


@dataclass(frozen=True)
class CardTemplate:
    type: str
    spec: CardSpec
    summary: Template
    detail: Template
    label: Template | None
    description: Template | None
    alternative_label: Template | None = None
    alternative_description: Template | None = None


@dataclass(frozen=True)
class RenderedText:
    summary: str
    detail: str
    label: str | None
    description: str | None
    alternative_label: str | None = None
    alternative_description: str | None = None


def plain_value(value: Any) -> str:
    """A value inside a plain-text field (summary, suggestion label, action description): shown
    as text by Epic, Oracle Health and the sandbox, so not escaped; control characters, which
    could break the line or reorder what is read, become spaces."""
    return _UNSAFE_IN_TEXT.sub(" ", value if type(value) is str else str(value))


def plain_line(text: str) -> str:
    """One line: a plain-text field's whitespace (template line breaks included) collapsed. Its
    length is bounded where it is emitted (the summary's 139 characters), and start-up renders
    every template with the longest sample values, so a text that does not fit never ships."""
    return " ".join(_UNSAFE_IN_TEXT.sub(" ", text).split())


def escape_markdown(value: Any) -> str:
    """Text safe inside GitHub-flavoured Markdown rendered with raw HTML (as the sandbox does)."""
    if isinstance(value, Markup):
        return str(value)
    return _escaped(value if type(value) is str else str(value))


# Cached: a card renders ~140 values, most of them the same labels, units and thresholds on
# every call (pure functions of a string; bounded, so varying values only cycle through).
@lru_cache(maxsize=4096)
def _escaped(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


@lru_cache(maxsize=1024)
def unit_text(unit: str) -> str:
    """A UCUM code as people read it: 10*9/L -> ×10⁹/L, Cel -> °C, {molecules}/{cell} -> /cell."""
    text = unit.replace("10*9", "×10⁹").replace("10*3", "×10³").replace("[degF]", "°F")
    text = re.sub(r"\bCel\b", "°C", text).replace("{molecules}/{cell}", "molecules/cell")
    return re.sub(r"\bu(g|mol|L|kat)", r"µ\1", text)


class CardKit:
    """Every card type's compiled templates plus the shared texts."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise ConfigFileError(f"{directory}: card template folder not found")
        self.directory = directory
        self.env = Environment(  # noqa: S701 - output is Markdown; finalize escapes every value
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            finalize=escape_markdown,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # templates are read once at start-up; no stat() per render
        )
        self.env.filters.update(
            number=number, unit_text=unit_text, when=when_text, result=lab_value_text
        )
        self.env.filters.update(verdict=_verdict, citation=_citation, lower_first=_lower_first)
        # Summary, suggestion label and action description are plain text: the same filters,
        # but values are not Markdown-escaped (no "&lt;" or "\\_" shown to clinicians).
        self.plain_env = self.env.overlay(finalize=plain_value)
        self.common = YamlDocument.read(directory / "_common.yaml").validate(CommonSpec)
        self.templates = {card_type: self._load(card_type) for card_type in CARD_TYPES}
        codes: dict[str, str] = {}
        for card_type, template in self.templates.items():
            other = codes.setdefault(template.spec.topic.code, card_type)
            if other != card_type:
                raise ConfigFileError(
                    f"{directory / (card_type + '.yaml')}: topic code "
                    f"{template.spec.topic.code!r} is already used by {other}.yaml"
                )
        for name in self.env.list_templates(filter_func=lambda n: n.startswith("_")):
            if name.endswith(".j2"):
                self._share_partial(name)

    def _share_partial(self, name: str) -> None:
        """Within one answer (see `answer`), a partial included with the same values is rendered
        once: the evidence table is the same in every card of an answer (one per draft order)."""
        try:
            template = self.env.get_template(name)
            source = self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
            names = tuple(sorted(meta.find_undeclared_variables(self.env.parse(source))))
        except TemplateError as exc:
            raise ConfigFileError(f"{self.directory / name}: template error: {exc}") from None
        render = template.root_render_func

        def shared(context: Context) -> Iterator[str]:
            memo = _ANSWER.get()
            if memo is None:
                yield from render(context)
                return
            values = tuple(context.get(n) for n in names)
            key = (name, tuple(_identity(v) for v in values))
            found = memo.get(key)
            if found is None:
                # The values are kept with the text, so no id in the key can be reused.
                found = memo[key] = ("".join(render(context)), values)
            yield found[0]

        template.root_render_func = shared

    @contextmanager
    def answer(self) -> Iterator[None]:
        """Rendering the cards of one answer: shared partials are rendered once in it."""
        token = _ANSWER.set({})
        try:
            yield
        finally:
            _ANSWER.reset(token)

    def _load(self, card_type: str) -> CardTemplate:
        path = self.directory / f"{card_type}.yaml"
        document = YamlDocument.read(path)
        spec = document.validate(CardSpec)
        for i, code in enumerate(spec.override_reasons):
            if code not in self.common.override_reasons:
                raise document.error(("override_reasons", i), f"unknown override reason {code!r}")

        def compile_(field: str, text: str | None, markdown: bool = False) -> Template | None:
            if text is None:
                return None
            try:
                return (self.env if markdown else self.plain_env).from_string(text)
            except TemplateError as exc:
                raise document.error((field,), f"template error: {exc}") from None

        return CardTemplate(
            type=card_type,
            spec=spec,
            summary=compile_("summary", spec.summary),  # type: ignore[arg-type]
            detail=compile_("detail", spec.detail, markdown=True),  # type: ignore[arg-type]
            label=compile_("suggestion", spec.suggestion.label if spec.suggestion else None),
            description=compile_(
                "suggestion", spec.suggestion.description if spec.suggestion else None
            ),
            alternative_label=compile_(
                "alternative", spec.alternative.label if spec.alternative else None
            ),
            alternative_description=compile_(
                "alternative", spec.alternative.description if spec.alternative else None
            ),
        )

    def render(self, card_type: str, **context: Any) -> RenderedText:
        template = self.templates[card_type]
        context.setdefault("notice", self.common.notice)

        def text(t: Template | None) -> str | None:
            return plain_line(t.render(**context)) if t is not None else None

        try:
            return RenderedText(
                summary=text(template.summary) or "",
                detail=template.detail.render(**context).strip() + "\n",
                label=text(template.label),
                description=text(template.description),
                alternative_label=text(template.alternative_label),
                alternative_description=text(template.alternative_description),
            )
        except TemplateError as exc:
            raise ConfigFileError(
                f"{self.directory / (card_type + '.yaml')}: cannot render: {exc}"
            ) from None


_ANSWER: ContextVar[dict[tuple[object, ...], tuple[str, object]] | None] = ContextVar(
    "card_answer", default=None
)


def _identity(value: object) -> object:
    """The memo key of a template value: plain values as such, other objects by identity (the
    templates only read them), lists by their items."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, list | tuple):
        return tuple(id(item) for item in value)
    return id(value)


def when_text(moment: datetime, now: datetime, relation: str = "ago") -> str:
    """`2026-11-20 06:00 UTC (6 h ago)`; the profile page says "before" its evaluation time."""
    hours = (now - moment).total_seconds() / 3600
    age = f"{hours:.0f} h {relation}" if hours < 72 else f"{hours / 24:.0f} days {relation}"
    return f"{moment:%Y-%m-%d %H:%M} UTC ({age})"


def result_text(value: float, comparator: str | None, upper: float | None, unit: str) -> str:
    """A result as reported: `>5000 pg/mL`, a range `10–20 mg/L`, units as people read them."""
    shown = f"{comparator or ''}{number(value)}"
    if upper is not None:
        shown = f"{number(value)}–{number(upper)}"
    return f"{shown} {unit_text(unit)}"


def lab_value_text(value: Any) -> str:
    """A LabValue (or what has its fields) as a card shows it, marked when preliminary."""
    text = result_text(value.value, value.comparator, value.upper, value.unit)
    return text + (" (preliminary)" if value.status == "preliminary" else "")


def _verdict(marker: Any) -> str:
    return {
        "above": "past threshold" if marker.basis == "threshold" else "past reference-range limit",
        "below": "not past threshold",
        "indeterminate": "cannot tell (result reported as a bound)",
        "stale": "too old to use",
        "missing": "no result",
        "no-criterion": "no threshold for this unit",
        "after-drug": "not counted (measured after a drug that changes it)",
        "unusable": "could not be read",
        "not-applied": "not applied in this setting",
    }[marker.state] + (" (near)" if marker.near_miss else "")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _citation(source: Any) -> Markup:
    short = escape_markdown(source.short)
    if source.doi:
        # Both parts are escaped above; Markup only stops finalize from escaping them twice.
        link = f"[{short}](<https://doi.org/{html.escape(source.doi)}>)"
        return Markup(link)  # noqa: S704
    return Markup(short)  # noqa: S704


def default_cards_dir() -> Path:
    """The shipped templates: inside the installed wheel, or the repository's cards/ folder."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_cards", package.parent / "cards"):
        if candidate.is_dir():
            return candidate
    raise ConfigFileError("the shipped card templates are missing; set CYTOKINE_CDS_CARDS_DIR")
