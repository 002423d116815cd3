"""Turn an assessment (and order findings) into CDS Hooks cards."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
from cds_service.hooks.response import Action, Card, Coding, Link, Source, Suggestion
from cds_service.rules.assessment import Assessment
from cds_service.rules.engine import assess
from cds_service.rules.loader import Rules
from cds_service.rules.orders import OrderFinding
from cds_service.validation import error_path
from cds_service.yamlfile import ConfigFileError


@dataclass(frozen=True)
class DataGapText:
    """What the data-incomplete card says about one prefetch key: which, why, whether partly."""

    key: str
    reason: str
    partial: bool = False


TOPIC_SYSTEM = "https://cytokine-cds.github.io/fhir/CodeSystem/css-subtype"
RECOMMENDING = ("il1-driven", "ifng-driven", "il6-driven")
_PATTERN_NAMES = {
    "il1-driven": ("IL-1-driven", "IL-1/IL-18-driven hyperinflammation"),
    "ifng-driven": ("IFN-γ-driven", "IFN-γ-driven hyperinflammation"),
    "il6-driven": ("IL-6-driven", "IL-6-predominant hyperinflammation"),
    "immunoparalysis": ("immunoparalysis", "sepsis-like immunoparalysis"),
    "mixed-pattern": ("mixed", "mixed pattern with no leading cytokine"),
}


def _uuid() -> str:
    return str(uuid.uuid4())


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

    def catalog_entry(self, analyte: str) -> AnalyteEntry:
        return self.catalog.analyte(analyte)

    def for_patient(
        self, assessment: Assessment, ctx: OrderContext, links: Iterable[Link] = ()
    ) -> list[Card]:
        """patient-view: the card for the assessed pattern, or none."""
        if assessment.subtype is None:
            return []
        if assessment.subtype == "multiplex-assay-needed":
            return [self.multiplex(assessment, ctx, None, links)]
        return [self.pattern(assessment, ctx, links)]

    def for_orders(
        self,
        findings: Iterable[OrderFinding],
        assessment: Assessment,
        ctx: OrderContext,
        links: Iterable[Link] = (),
    ) -> list[Card]:
        """order-select / order-sign: a warning per mismatched order; one multiplex card."""
        cards: list[Card] = []
        asked_for_panel = False
        with self.kit.answer():  # one evidence table for all the cards of this answer
            for finding in findings:
                if finding.kind == "mismatch":
                    cards.append(self.mismatch(finding, assessment, ctx, links))
                elif not asked_for_panel:
                    cards.append(self.multiplex(assessment, ctx, finding, links))
                    asked_for_panel = True
        return cards

    def pattern(self, assessment: Assessment, ctx: OrderContext, links: Iterable[Link]) -> Card:
        subtype = assessment.subtype
        assert subtype is not None
        treatment = self.rules.treatments[subtype]
        drug = self._drug_name(treatment.recommend)
        text = self.kit.render(
            subtype, **self._context(assessment, [treatment.source]), drug=drug, treatment=treatment
        )
        suggestions = None
        if subtype in RECOMMENDING and treatment.recommend and text.label:
            why = (
                f"Suggested by cytokine-cds: pattern consistent with {_PATTERN_NAMES[subtype][1]}."
            )
            resource = medication_request(
                self.rules.drugs[treatment.recommend].rxnorm,
                drug,
                why,
                ctx,
                self.orderables.get(treatment.recommend),
            )
            suggestions = [
                Suggestion(
                    label=text.label,
                    uuid=_uuid(),
                    isRecommended=True,
                    actions=[
                        Action(
                            type="create",
                            description=text.description or text.label,
                            resource=resource,
                        )
                    ],
                )
            ]
        return self._card(subtype, text.summary, text.detail, treatment.source, suggestions, links)

    def multiplex(
        self,
        assessment: Assessment,
        ctx: OrderContext,
        finding: OrderFinding | None,
        links: Iterable[Link],
    ) -> Card:
        sources = [self.rules.hyperinflammation.source]
        text = self.kit.render(
            "multiplex-assay-needed",
            **self._context(assessment, sources),
            finding=self._named(finding) if finding else None,
            panel=self.panel.display,
        )
        why = (
            "Suggested by cytokine-cds: signs of hyperinflammation without recent cytokine results."
        )
        suggestion = Suggestion(
            label=text.label or "Order a cytokine multiplex panel",
            uuid=_uuid(),
            isRecommended=True,
            actions=[
                Action(
                    type="create",
                    description=text.description or "Order a cytokine multiplex panel",
                    resource=panel_request(self.panel, why, ctx),
                )
            ],
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
        subtype = assessment.subtype
        assert subtype is not None and subtype in _PATTERN_NAMES
        treatment = self.rules.treatments[subtype]
        recommended = self._drug_name(finding.recommend) if finding.recommend else None
        text = self.kit.render(
            "order-mismatch",
            **self._context(assessment, [treatment.source]),
            finding=self._named(finding),
            treatment=treatment,
            recommended=recommended,
            pattern=_PATTERN_NAMES[subtype][0],
            pattern_display=_PATTERN_NAMES[subtype][1],
        )
        # One action per suggestion (Epic's limit; the sandbox applies only a suggestion's first
        # action): removing the draft and ordering the alternative are two suggestions.
        suggestions = []
        drug = self._drug_name(finding.drug)
        if finding.order:
            suggestions.append(
                Suggestion(
                    label=text.label or f"Remove the draft order for {drug}",
                    uuid=_uuid(),
                    actions=[
                        Action(
                            type="delete",
                            description=text.description or f"Delete the draft order for {drug}",
                            resourceId=finding.order,
                        )
                    ],
                )
            )
        if finding.recommend and recommended:
            why = f"Suggested by cytokine-cds instead of {drug}."
            suggestions.append(
                Suggestion(
                    label=text.alternative_label or f"Order {recommended} instead",
                    uuid=_uuid(),
                    actions=[
                        Action(
                            type="create",
                            description=text.alternative_description
                            or f"Create a draft order for {recommended}",
                            resource=medication_request(
                                self.rules.drugs[finding.recommend].rxnorm,
                                recommended,
                                why,
                                ctx,
                                self.orderables.get(finding.recommend),
                            ),
                        )
                    ],
                )
            )
        return self._card(
            "order-mismatch",
            text.summary,
            text.detail,
            treatment.source,
            suggestions or None,
            links,
        )

    def data_incomplete(self, gaps: list[DataGapText]) -> Card:
        """The info card naming the data that could not be read, so no advice looks complete."""
        text = self.kit.render("data-incomplete", gaps=gaps)
        return self._card("data-incomplete", text.summary, text.detail, None, None, ())

    def _context(self, assessment: Assessment, extra_sources: list[str]) -> dict[str, Any]:
        cited_ids = [m.source for m in assessment.values_used() if m.source] + extra_sources
        cited = [self.rules.sources[s] for s in dict.fromkeys(cited_ids) if s in self.rules.sources]
        return {
            "assessment": assessment,
            "rules": self.rules,
            "cited": cited,
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
        return Card(
            uuid=_uuid(),
            summary=summary,
            detail=detail,
            indicator=spec.indicator,
            source=Source(
                label=label[:200],
                url=f"https://doi.org/{source.doi}" if source and source.doi else None,
                topic=Coding(system=TOPIC_SYSTEM, code=spec.topic.code, display=spec.topic.display),
            ),
            suggestions=suggestions,
            # "any" is the one value Epic supports, and valid for every client.
            selectionBehavior="any" if suggestions else None,
            overrideReasons=reasons or None,
            links=list(links) or None,
        )


def check_kit(builder: CardBuilder) -> None:
    """Render every card type with sample content, so a broken template stops start-up."""
    for render, args in sample_renders(builder):
        _checked(render, *args)


def sample_cards(builder: CardBuilder, links: Sequence[Link] = ()) -> list[Card]:
    """Every card the kit can build: each pattern, each order against each pattern, the
    multiplex card with and without an order, the data card (for tests of clients' limits)."""
    return [render(*args) for render, args in sample_renders(builder, links)]


def sample_renders(
    builder: CardBuilder, links: Sequence[Link] = ()
) -> list[tuple[Callable[..., Card], tuple[Any, ...]]]:
    """Each card type with sample content, and the order-mismatch card for every drug and
    pattern, since its summary names both and must stay under the spec's 140 characters
    whatever a hospital's rules contain."""
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
    for subtype in _PATTERN_NAMES:
        assessed = sample.model_copy(update={"subtype": subtype})
        renders.append((builder.pattern, (assessed, ctx, links)))
        treatment = rules.treatments[subtype]
        for drug_id, drug in rules.drugs.items():
            finding = OrderFinding(
                kind="mismatch", order="MedicationRequest/sample", drug=drug_id,
                drug_class=drug.class_, recommend=treatment.recommend,
                daily_dose_prednisone_mg=500.0 if drug.prednisone_equivalent else None,
            )  # fmt: skip
            renders.append((builder.mismatch, (finding, assessed, ctx, links)))
            if drug_id == treatment.recommend:
                ordered = finding.model_copy(update={"kind": "needs-cytokines"})
                renders.append((builder.multiplex, (sample, ctx, ordered, links)))
    renders.append((builder.multiplex, (sample, ctx, None, links)))
    renders.append(
        (builder.data_incomplete, ([DataGapText("labs", "sample reason", partial=True)],))
    )
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
