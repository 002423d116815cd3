"""Turn an assessment (and order findings) into CDS Hooks cards.

Every card names the setting whose rules were applied. Drug suggestions come only from the
setting's advice (a hyperinflammation state found, safety checks passed); one action per
suggestion, `selectionBehavior` "any".
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from cds_service.cards.resources import (
    OrderContext,
    PanelCode,
    check_resources,
    medication_request,
    panel_request,
)
from cds_service.cards.templates import CardKit
from cds_service.evidence import AnalyteEntry, AnalyteEvidence, Catalog, Evidence, LabValue
from cds_service.fhir.draft_orders import DraftMedication
from cds_service.hooks.response import Action, Card, Coding, Link, Source, Suggestion
from cds_service.rules.assessment import (
    AdviceStatus,
    AdviceView,
    Assessment,
    MarkerResult,
    Reminder,
    ScoreView,
    SettingView,
    StateView,
)
from cds_service.rules.engine import assess, number
from cds_service.rules.loader import BODY_WEIGHT, Rules
from cds_service.rules.orders import OrderFinding, dose_above
from cds_service.rules.schema import SUBTYPES
from cds_service.rules.setting_rules import markers_read
from cds_service.validation import error_path
from cds_service.yamlfile import ConfigFileError


@dataclass(frozen=True)
class DataGapText:
    """What the data-incomplete card says about one prefetch key: which, why, whether partly."""

    key: str
    reason: str
    partial: bool = False


TOPIC_SYSTEM = "https://cytokine-cds.github.io/fhir/CodeSystem/css-subtype"
PATTERN_CARDS = SUBTYPES  # hedged descriptions of the cytokine pattern, never a drug


log = logging.getLogger(__name__)

SUMMARY_MAX = 139  # characters: the CDS Hooks limit is "<140"
# Set while start-up renders the samples: there an overlong summary stops start-up.
_CHECKING: ContextVar[bool] = ContextVar("checking_card_samples", default=False)


def _fitting(summary: str, card_type: str) -> str:
    """The summary, cut with an ellipsis when a template and unusual values make it longer
    than the spec allows: a card too long for a client is worse than a shortened one, and a
    failed answer worst. Start-up checks the longest samples, so this is a last resort."""
    if len(summary) <= SUMMARY_MAX:
        return summary
    if _CHECKING.get():
        raise ConfigFileError(
            f"card templates: a {card_type} summary is {len(summary)} characters, and one is "
            f"at most {SUMMARY_MAX}: {summary[:60]!r}…"
        )
    log.warning(
        "card %s: a summary of %d characters was cut to %d; shorten its template",
        card_type, len(summary), SUMMARY_MAX,
    )  # fmt: skip
    return summary[: SUMMARY_MAX - 1].rstrip() + "…"


def _uuid() -> str:
    return str(uuid.uuid4())


def _suggestion(label: str, action: Action, *, recommended: bool | None = None) -> Suggestion:
    """A suggestion with its own uuid and one action (the shape every client accepts)."""
    return Suggestion(label=label, uuid=_uuid(), isRecommended=recommended, actions=[action])


class CardBuilder:
    """Read-only after construction; one per process."""

    def __init__(
        self,
        kit: CardKit,
        rules: Rules,
        catalog: Catalog,
        panel: PanelCode,
        orderables: Mapping[str, PanelCode] | None = None,
    ) -> None:
        self.kit = kit
        self.rules = rules
        self.catalog = catalog
        self.panel = panel
        self.orderables = dict(orderables or {})  # drug id -> the hospital's orderable
        self._setting_labels = {key: spec.label for key, spec in rules.settings.items()}

    @property
    def _weight_days(self) -> float | None:
        """How old a body weight may be and still judge a dose by weight, in days."""
        if BODY_WEIGHT not in self.catalog.analyte_ids:
            return None
        return self.catalog.analyte(BODY_WEIGHT).freshness_hours / 24

    def catalog_entry(self, analyte: str) -> AnalyteEntry:
        return self.catalog.analyte(analyte)

    def for_patient(
        self, assessment: Assessment, ctx: OrderContext, links: Iterable[Link] = ()
    ) -> list[Card]:
        """patient-view: the applied setting's card, the multiplex card, a hedged pattern, or
        none."""
        judged = assessment.undecided or assessment.not_applied
        if assessment.state is not None or (assessment.setting and judged):
            return [self.setting_card(assessment, ctx, links)]
        if assessment.subtype == "multiplex-assay-needed":
            return [self.multiplex(assessment, ctx, None, links)]
        if self._pattern_shown(assessment):
            return [self.pattern(assessment, links)]
        if assessment.unusable:
            return [self.data_incomplete([], assessment.unusable)]
        return []

    def for_orders(
        self,
        findings: Iterable[OrderFinding],
        assessment: Assessment,
        ctx: OrderContext,
        links: Iterable[Link] = (),
    ) -> list[Card]:
        """order-select / order-sign: a card per order finding; at most one multiplex card."""
        cards: list[Card] = []
        asked_for_panel = False
        with self.kit.answer():  # one evidence table for all the cards of this answer
            for finding in findings:
                if finding.kind == "needs-cytokines":
                    if not asked_for_panel:
                        cards.append(self.multiplex(assessment, ctx, finding, links))
                        asked_for_panel = True
                elif finding.kind == "mismatch":
                    cards.append(self.mismatch(finding, assessment, ctx, links))
                else:
                    cards.append(self.order_caution(finding, assessment, links))
        return cards

    # --- card types -------------------------------------------------------------------------

    def setting_card(
        self, assessment: Assessment, ctx: OrderContext, links: Iterable[Link]
    ) -> Card:
        """The applied setting: its state and score, the one action, alternatives, cautions."""
        state = assessment.state
        advice = assessment.advice
        sources = [state.source] if state else []
        sources += [item.source for item in advice]
        sources += [reminder.source for reminder in assessment.reminders]
        text = self.kit.render(
            "setting-advice",
            **self._context(assessment, sources or self._state_sources(assessment)),
            setting=self._setting(assessment.setting),
            others=assessment.other_settings,
            setting_labels=self._setting_labels,
            state=state,
            state_short=self._state_short(assessment),
            scores=self._scores(assessment),
            # The rules judged first say why they handed over (a grade of 0 may carry a caveat).
            handed_over_scores=self._scores_of(assessment, assessment.handed_over_from),
            advice=advice,
            first=advice[0] if advice else None,
        )
        suggestions = [
            self._draft(item, assessment, ctx) for item in advice if item.drafted and item.drug
        ]
        warning = any(item.status in ("caution", "removed", "outside-ages") for item in advice) or (
            state is not None and state.indicator == "warning"
        )
        return self._card(
            "setting-advice",
            text.summary,
            text.detail,
            state.source if state else None,
            suggestions or None,
            links,
            topic=(state.topic_code, state.topic_display) if state else None,
            indicator="warning" if warning else None,
        )

    def pattern(self, assessment: Assessment, links: Iterable[Link]) -> Card:
        """A cytokine pattern, hedged: the drug depends on a setting the chart does not give."""
        subtype = assessment.subtype
        assert subtype is not None
        pattern = self.rules.patterns[subtype]
        text = self.kit.render(
            subtype,
            **self._context(
                assessment, [pattern.source, self.rules.diagnostic_bar.source], rows="axes"
            ),
            pattern=pattern,
            setting=self._setting(assessment.setting),
            scores=self._scores(assessment),
            bar=self.rules.diagnostic_bar,
        )
        return self._card(subtype, text.summary, text.detail, pattern.source, None, links)

    def multiplex(
        self,
        assessment: Assessment,
        ctx: OrderContext,
        finding: OrderFinding | None,
        links: Iterable[Link],
    ) -> Card:
        bar = self.rules.diagnostic_bar
        sources = [assessment.state.source if assessment.state else bar.source]
        text = self.kit.render(
            "multiplex-assay-needed",
            **self._context(assessment, sources, rows="none"),
            finding=self._named(finding) if finding else None,
            panel=self.panel.display,
            setting=self._setting(assessment.setting),
            scores=self._scores(assessment),
            bar=bar,
            window=self._cytokine_window(assessment),
        )
        why = (
            f"Suggested by cytokine-cds: the recorded data meet {bar.label}; no recent cytokine "
            "result."
        )
        suggestion = _suggestion(
            text.label or "Order a cytokine multiplex panel",
            Action(
                type="create",
                description=text.description or "Order a cytokine multiplex panel",
                resource=panel_request(self.panel, why, ctx),
            ),
            recommended=True,
        )
        return self._card(
            "multiplex-assay-needed", text.summary, text.detail, sources[0], [suggestion], links
        )

    def mismatch(
        self,
        finding: OrderFinding,
        assessment: Assessment,
        ctx: OrderContext,
        links: Iterable[Link],
    ) -> Card:
        """An avoid rule of the applied setting fired: remove the draft; order the alternative."""
        avoid = self._avoid(assessment, finding.rule)
        recommended = self._drug_name(finding.recommend) if finding.recommend else None
        assert finding.source is not None
        read = markers_read(self.rules, avoid.when) if avoid else ()
        text = self.kit.render(
            "order-mismatch",
            **self._context(assessment.model_copy(update={"decisive": read}), [finding.source]),
            finding=self._named(finding),
            short=avoid.short if avoid else "reconsider",
            setting=self._setting(assessment.setting),
            recommended=recommended,
        )
        suggestions = []
        drug = self._drug_name(finding.drug)
        if finding.order:
            suggestions.append(
                _suggestion(
                    text.label or f"Remove the draft order for {drug}",
                    Action(
                        type="delete",
                        description=text.description or f"Delete the draft order for {drug}",
                        resourceId=finding.order,
                    ),
                )
            )
        if finding.recommend and recommended:
            why = f"Suggested by cytokine-cds instead of {drug}: {finding.reason}"
            suggestions.append(
                _suggestion(
                    text.alternative_label or f"Order {recommended} instead",
                    Action(
                        type="create",
                        description=text.alternative_description
                        or f"Create a draft order for {recommended}",
                        resource=medication_request(
                            self.rules.drugs[finding.recommend].rxnorm,
                            recommended,
                            why[:1000],
                            ctx,
                            self.orderables.get(finding.recommend),
                        ),
                    ),
                )
            )
        return self._card(
            "order-mismatch", text.summary, text.detail, finding.source, suggestions or None, links
        )

    def order_caution(
        self, finding: OrderFinding, assessment: Assessment, links: Iterable[Link]
    ) -> Card:
        """A label safety check failed for the ordered drug, its alternative is on the chart, an
        avoid rule of the setting gives a caution, or its dose could not be read."""
        avoid = self._avoid(assessment, finding.rule)
        # A caution from an avoid rule shows the results it read, like a mismatch.
        read = (
            markers_read(self.rules, avoid.when)
            if avoid and finding.kind == "setting-caution"
            else ()
        )
        text = self.kit.render(
            "order-caution",
            **self._context(
                assessment.model_copy(update={"decisive": read}),
                [s for s in (finding.source, *finding.cites) if s],
            ),
            finding=self._named(finding),
            setting=self._setting(assessment.setting),
            short=avoid.short if avoid else "",
            weight_days=self._weight_days,
        )
        return self._card(
            "order-caution",
            text.summary,
            text.detail,
            finding.source,
            None,
            links,
            indicator=(
                "info" if finding.kind in ("dose-unknown", "weight-unknown", "label-note") else None
            ),
        )

    def data_incomplete(self, gaps: list[DataGapText], unusable: Sequence[str] = ()) -> Card:
        """The info card naming the data that could not be read, so no advice looks complete."""
        text = self.kit.render("data-incomplete", gaps=gaps, unusable=list(unusable))
        return self._card("data-incomplete", text.summary, text.detail, None, None, ())

    # --- helpers ----------------------------------------------------------------------------

    def _pattern_shown(self, assessment: Assessment) -> bool:
        """A hedged pattern card: a pattern named, the diagnostic bar met, and a setting whose
        rules describe patterns (unknown, Still's, HLH)."""
        setting = assessment.setting.setting if assessment.setting else "unknown"
        return (
            assessment.subtype in PATTERN_CARDS
            and assessment.diagnostic_bar is True
            and self.rules.settings[setting].multiplex
        )

    def _draft(self, item: AdviceView, assessment: Assessment, ctx: OrderContext) -> Suggestion:
        assert item.drug is not None
        drug = self.rules.drugs[item.drug]
        name = drug.names[0]
        setting = self._setting(assessment.setting)
        state = assessment.state.label if assessment.state else ""
        short = self.rules.sources[item.source].short
        why = f"Suggested by cytokine-cds: {setting}; the recorded data meet {state} ({short})."
        return _suggestion(
            f"Draft an order for {name}",
            Action(
                type="create",
                description=(
                    f"Create a draft MedicationRequest for {name} (RxNorm ingredient); dose, "
                    "route and frequency are left to the prescriber."
                ),
                resource=medication_request(
                    drug.rxnorm, name, why[:1000], ctx, self.orderables.get(item.drug)
                ),
            ),
            recommended=item is assessment.advice[0],
        )

    def _setting(self, setting: SettingView | None) -> str:
        return setting.heading if setting else self.rules.settings["unknown"].short

    def _state_short(self, assessment: Assessment) -> str:
        state = assessment.state
        if state is None:
            return ""
        spec = next(
            s
            for s in self.rules.settings[
                assessment.setting.setting if assessment.setting else "unknown"
            ].states
            if s.id == state.id
        )
        values = {
            k: ("≥ " if k in assessment.lower_bounds else "") + _fact_text(v)
            for k, v in assessment.facts.items()
        }
        try:
            return spec.short.format_map(values)
        except (KeyError, ValueError):
            return spec.short

    def _cytokine_window(self, assessment: Assessment) -> str:
        """The freshness window of the cytokines without a recent result: "48 h"."""
        missing = set(assessment.missing_groups)
        groups = [g for g in self.rules.cytokine_groups if g.label in missing]
        hours = sorted(
            {
                self.catalog.analyte(analyte).freshness_hours
                for group in groups or self.rules.cytokine_groups
                for analyte in group.analytes
            }
        )
        shown = [number(h) for h in hours]
        return f"{shown[0]} h" if len(shown) == 1 else f"{shown[0]}-{shown[-1]} h"

    def _state_sources(self, assessment: Assessment) -> list[str]:
        """The sources of the setting's states (a card that could not judge them cites them)."""
        setting = assessment.setting.setting if assessment.setting else "unknown"
        return [state.source for state in self.rules.settings[setting].states]

    def _scores(self, assessment: Assessment) -> list[ScoreView]:
        return self._scores_of(
            assessment, assessment.setting.setting if assessment.setting else "unknown"
        )

    def _scores_of(self, assessment: Assessment, setting: str | None) -> list[ScoreView]:
        if setting is None:
            return []
        wanted = self.rules.settings[setting].scores
        return [score for score in assessment.scores if score.id in wanted]

    def _avoid(self, assessment: Assessment, rule_id: str | None) -> Any:
        setting = assessment.setting.setting if assessment.setting else "unknown"
        return next((r for r in self.rules.settings[setting].avoid if r.id == rule_id), None)

    def _context(
        self, assessment: Assessment, extra_sources: list[str], rows: str = "decisive"
    ) -> dict[str, Any]:
        shown = _rows(assessment, rows)
        cited_ids = extra_sources + [m.source for m in shown if m.source]
        cited = [self.rules.sources[s] for s in dict.fromkeys(cited_ids) if s in self.rules.sources]
        return {
            "assessment": assessment,
            "rows": shown,
            "rules": self.rules,
            "cited": cited,
            "show_missing": rows != "decisive",  # setting cards: cytokines do not decide
            "near_miss_percent": round((1 - self.rules.near_miss_fraction) * 100),
        }

    def _drug_name(self, drug_id: str | None) -> str:
        return self.rules.drugs[drug_id].names[0] if drug_id else ""

    def _named(self, finding: OrderFinding) -> OrderFinding:
        """The finding with the drug's display name in place of its id, for templates."""
        return finding.model_copy(update={"drug": self._drug_name(finding.drug)})

    def _card(
        self,
        card_type: str,
        summary: str,
        detail: str,
        source_id: str | None,
        suggestions: list[Suggestion] | None,
        links: Iterable[Link],
        *,
        topic: tuple[str, str] | None = None,
        indicator: Literal["info", "warning", "critical"] | None = None,
    ) -> Card:
        spec = self.kit.templates[card_type].spec
        common = self.kit.common
        source = self.rules.sources.get(source_id) if source_id else None
        label = common.source_label + (f" ({source.short})" if source else "")
        reasons = [
            Coding(
                system=common.override_reason_system,
                code=code,
                display=common.override_reasons[code],
            )
            for code in spec.override_reasons
        ]
        code, display = topic or (spec.topic.code, spec.topic.display)
        url = None
        if source is not None:
            url = f"https://doi.org/{source.doi}" if source.doi else source.url
        return Card(
            uuid=_uuid(),
            summary=_fitting(summary, card_type),
            detail=detail,
            indicator=indicator or spec.indicator,
            source=Source(
                label=label[:200],
                url=url,
                topic=Coding(system=TOPIC_SYSTEM, code=code, display=display),
            ),
            suggestions=suggestions,
            selectionBehavior="any" if suggestions else None,
            overrideReasons=reasons or None,
            links=list(links) or None,
        )


def _rows(assessment: Assessment, rows: str) -> list[MarkerResult]:
    """The markers a card's table shows, each once. "decisive": the markers the applied rules
    read and the results a drug given changes; "axes": the cytokine axes' markers with a result
    (the pattern); "none": the score's own items say it (the multiplex card)."""
    used = assessment.values_used()
    if rows == "axes":
        on_axes = {m.marker for axis in assessment.axes for m in (*axis.pivotal, *axis.supportive)}
        return [m for m in used if m.marker in on_axes]
    if rows == "decisive":
        return [m for m in used if m.marker in assessment.decisive or m.state == "after-drug"]
    return [m for m in used if m.state == "after-drug"]


def _fact_text(value: float | bool | None) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return number(float(value))


def check_kit(builder: CardBuilder) -> None:
    """Render every card type with sample content, so a broken template stops start-up."""
    checking = _CHECKING.set(True)
    try:
        for render, args in sample_renders(builder):
            _checked(render, *args)
    finally:
        _CHECKING.reset(checking)


def sample_cards(builder: CardBuilder, links: Sequence[Link] = ()) -> list[Card]:
    """Every card the kit can build: each pattern, each setting's states with every advice
    status, each avoid rule and safety check, the multiplex and data cards (for tests of
    clients' limits)."""
    return [render(*args) for render, args in sample_renders(builder, links)]


def sample_renders(
    builder: CardBuilder, links: Sequence[Link] = ()
) -> list[tuple[Callable[..., Card], tuple[Any, ...]]]:
    """Each card type with sample content: the setting card for every state and advice of the
    rules file, the mismatch card for every avoid rule, since their summaries name drugs and
    settings and must stay under the spec's 140 characters whatever a hospital's rules contain."""
    rules = builder.rules
    now = datetime(2026, 1, 1, tzinfo=UTC)
    values = {}
    for marker in rules.markers.values():
        criterion = marker.criteria[0]
        entry = builder.catalog_entry(marker.analyte)
        family = criterion.family or next(iter(entry.families))
        unit = entry.families[family].canonical
        value = LabValue(
            analyte=marker.analyte, value=(criterion.threshold or 1.0) * 1.01, comparator=None,
            upper=None, unit=unit, family=family, effective=now, status="final",
            reference_low=None, reference_high=1.0, interpretation=(),
            source="Observation/sample",
        )  # fmt: skip
        values[marker.analyte] = AnalyteEvidence(
            analyte=marker.analyte, latest=value, previous=None, trend="unknown",
            history=(value,), fresh=True, freshness_hours=entry.freshness_hours,
        )  # fmt: skip
    sample = assess(Evidence(as_of=now, analytes=values, problems=()), rules)
    ctx = OrderContext(patient_id="sample", encounter_id=None, user_id=None, now=now)
    renders: list[tuple[Callable[..., Card], tuple[Any, ...]]] = []
    for subtype in PATTERN_CARDS:
        renders.append((builder.pattern, (sample.model_copy(update={"subtype": subtype}), links)))
    score = ScoreView(
        id="sample", label="Sample score", value=1.0, text="Sample score 1", population="adults"
    )
    statuses: tuple[AdviceStatus, ...] = (
        "suggest", "caution", "already-given", "removed", "alternative", "outside-ages",
    )  # fmt: skip
    for setting_id, setting in rules.settings.items():
        view = SettingView(setting=setting_id, label=setting.short, reason="sample reason", day=3)
        reminders = tuple(Reminder.of(a) for a in setting.avoid if a.remind)
        placed = sample.model_copy(update={"setting": view, "reminders": reminders})
        for state in setting.states:
            state_view = StateView(
                id=state.id, label=state.label, source=state.source,
                topic_code=state.topic.code, topic_display=state.topic.display,
            )  # fmt: skip
            for status in statuses:
                advice = tuple(
                    AdviceView(
                        rule=a.id,
                        drug=a.drug,
                        action=a.drug or a.action or "",
                        status=status if a.drug else "advise",
                        source=a.source,
                        population=a.population,
                        rationale=a.rationale,
                        findings=("sample finding",) if status != "suggest" else (),
                    )
                    for a in setting.advice
                    if state.id in a.states
                )
                filled = placed.model_copy(
                    update={"state": state_view, "advice": advice, "scores": (score,),
                            "other_settings": (view,)}
                )  # fmt: skip
                renders.append((builder.setting_card, (filled, ctx, links)))
        longest = max((s.label for s in setting.states), key=len, default="Sample state")
        unknown = ", ".join(rules.markers[m].label for m in list(rules.markers)[:6])
        line = f"{longest} cannot be judged (unknown: {unknown})"
        undecided = placed.model_copy(update={"undecided": (line,)})
        renders.append((builder.setting_card, (undecided, ctx, links)))
        outside = (
            f"{longest} not applied: the patient is 6 years old, and {score.label} was derived "
            "and validated in adults with a long population description; another rule applies"
        )
        renders.append(
            (
                builder.setting_card,
                (placed.model_copy(update={"not_applied": (outside,)}), ctx, links),
            )
        )
        for rule in setting.avoid:
            drug_id = (
                rule.drugs[0]
                if rule.drugs
                else next(d for d, spec in rules.drugs.items() if spec.class_ in rule.classes)
            )
            finding = OrderFinding(
                kind="mismatch" if rule.outcome == "mismatch" else "setting-caution",
                order="MedicationRequest/sample", drug=drug_id,
                drug_class=rules.drugs[drug_id].class_, recommend=rule.instead, rule=rule.id,
                source=rule.source, reason=rule.reason, daily_dose_prednisone_mg=500.0,
            )  # fmt: skip
            if rule.outcome == "mismatch":
                renders.append((builder.mismatch, (finding, placed, ctx, links)))
            else:
                renders.append((builder.order_caution, (finding, placed, links)))
        for spec in setting.advice:
            if spec.drug is None or spec.alternatives is None:
                continue
            finding = OrderFinding(
                kind="alternative", order="MedicationRequest/sample", drug=spec.drug,
                drug_class=rules.drugs[spec.drug].class_, source=spec.alternatives.source,
                reason="sample reason", alternative=spec.alternatives.drugs[0],
            )  # fmt: skip
            renders.append((builder.order_caution, (finding, placed, links)))
        if setting.multiplex:
            ordered = OrderFinding(
                kind="needs-cytokines", order="MedicationRequest/sample", drug="anakinra",
                drug_class="il1-blockade",
            )  # fmt: skip
            renders.append((builder.multiplex, (placed, ctx, ordered, links)))
    # The longest setting heading a summary can start with.
    short_id, widest_spec = max(rules.settings.items(), key=lambda item: len(item[1].short))
    widest = sample.model_copy(
        update={"setting": SettingView(
            setting=short_id, label=widest_spec.short, reason="sample reason", day=99
        )}
    )  # fmt: skip
    for check in rules.safety:
        finding = OrderFinding(
            kind="label-note" if check.outcome == "note" else "caution",
            order="MedicationRequest/sample", drug=check.drugs[0],
            drug_class=rules.drugs[check.drugs[0]].class_, source=check.source,
            reason=f"{check.finding} ({rules.sources[check.source].short})",
        )  # fmt: skip
        renders.append((builder.order_caution, (finding, widest, links)))
    # The longest numbers a dose limit's text can hold: a dose by weight at the heaviest weight.
    weight = LabValue(
        analyte=BODY_WEIGHT, value=499.5, comparator=None, upper=None, unit="kg", family="mass",
        effective=now, status="final", reference_low=None, reference_high=None,
        interpretation=(), source="Observation/sample",
    )  # fmt: skip
    heaviest = 199.5 * 499.5
    heavy = DraftMedication(
        reference="MedicationRequest/sample", rxnorm_codes=(), names=(), daily_dose_mg=None,
        resource={}, dose_mg=heaviest, dose_mg_per_kg=199.5,
    )  # fmt: skip
    # The same at the order's own maximum a dose, once a dose and once a day's dose per kg.
    capped = replace(heavy, max_dose_mg=heaviest - 0.5)
    daily = replace(capped, daily_mg_per_kg=199.5, doses_a_day=1)
    for limit in rules.dose_limits:
        for order in (heavy, capped, daily):
            above = dose_above(limit, order, weight)
            if above is None:  # a limit above any real dose: no card it gives can be longer
                continue
            finding = OrderFinding(
                kind="dose-limit", order="MedicationRequest/sample", drug=limit.drugs[0],
                drug_class=rules.drugs[limit.drugs[0]].class_, rule=limit.id,
                source=limit.source, reason=above.reason, detail=above.detail,
                cites=above.cites,
            )  # fmt: skip
            renders.append((builder.order_caution, (finding, widest, links)))
    if rules.dose_limits:
        limit = rules.dose_limits[0]
        unweighed = OrderFinding(
            kind="weight-unknown", order="MedicationRequest/sample", drug=limit.drugs[0],
            drug_class=rules.drugs[limit.drugs[0]].class_, rule=limit.id, source=limit.source,
            reason="199.5 mg/kg ordered",
        )  # fmt: skip
        renders.append((builder.order_caution, (unweighed, sample, links)))
    unreadable = OrderFinding(
        kind="dose-unknown", order="MedicationRequest/sample", drug="methylprednisolone",
        drug_class="corticosteroid", source="provide2022", reason="sample reason",
    )  # fmt: skip
    renders.append((builder.order_caution, (unreadable, sample, links)))
    renders.append((builder.multiplex, (sample, ctx, None, links)))
    renders.append(
        (builder.data_incomplete, ([DataGapText("labs", "sample reason", partial=True)],))
    )
    renders.append((builder.data_incomplete, ([], ("il6: sample unusable result",))))
    return renders


def _checked(render: Callable[..., Card], *args: Any) -> None:
    try:
        card = render(*args)
        # The suggested resources are built as JSON: each must be valid R4 as it is emitted.
        check_resources(
            [
                action.resource
                for suggestion in card.suggestions or ()
                for action in suggestion.actions or ()
                if action.resource is not None
            ]
        )
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        where = error_path(problem["loc"])
        raise ConfigFileError(
            f"card templates: a rendered card is invalid ({where}: {problem['msg']})"
        ) from None
