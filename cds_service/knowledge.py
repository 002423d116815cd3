"""The knowledge the service decides with: analyte catalog, rules, card templates and the
chart-context catalog.

Loaded and validated together, once, at start-up; read-only afterwards.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cds_service.cards.build import CardBuilder, check_kit
from cds_service.cards.resources import PanelCode
from cds_service.cards.templates import CardKit
from cds_service.context import ContextCatalog, load_context_catalog
from cds_service.evidence import Catalog, load_catalog
from cds_service.rules.loader import Rules, load_rules
from cds_service.rules.scores import ScoreBook, load_scores
from cds_service.yamlfile import ConfigFileError


@dataclass(frozen=True)
class Knowledge:
    catalog: Catalog
    rules: Rules
    cards: CardBuilder
    context: ContextCatalog  # codes and names that recognise settings, drugs, oxygen support
    scores: ScoreBook  # the clinical scores' items, cut-offs and sources (rules/scores.yaml)


@lru_cache(maxsize=8)
def load_knowledge(
    local_codes_file: Path | None,
    rules_file: Path | None,
    cards_dir: Path,
    panel: PanelCode,
    context_codes_file: Path | None = None,
    orderables: tuple[tuple[str, PanelCode], ...] = (),
) -> Knowledge:
    """Catalog, rules and card templates, validated together. Raises ConfigFileError.

    Cached per set of files: the objects are read-only, and several apps in one process (tests,
    the CLI, screening workers) need not pay the UCUM set-up twice.
    """
    catalog = load_catalog(local_codes_file)
    context = load_context_catalog(context_codes_file)
    rules = _with_chart_names(load_rules(catalog, rules_file), context)
    unknown = sorted(drug for drug, _ in orderables if drug not in rules.drugs)
    if unknown:
        raise ConfigFileError(
            f"CYTOKINE_CDS_DRUG_ORDERABLES: unknown drug {', '.join(unknown)}; the rules file "
            f"names {', '.join(rules.drugs)}"
        )
    builder = CardBuilder(CardKit(cards_dir), rules, catalog, panel, dict(orderables))
    check_kit(builder)
    return Knowledge(catalog, rules, builder, context, load_scores(catalog))


def _with_chart_names(rules: Rules, context: ContextCatalog) -> Rules:
    """The rules with every name the chart-context codes give a drug (a hospital's too): an
    order by a brand the order checks did not know would pass every one of them unchecked."""
    drugs = {}
    for drug_id, drug in rules.drugs.items():
        known = {" ".join(name.casefold().split()) for name in drug.names}
        extra = [name for name in context.names_of("drug", drug_id) if name not in known]
        drugs[drug_id] = drug.model_copy(update={"names": [*drug.names, *extra]}) if extra else drug
    return dataclasses.replace(rules, drugs=drugs)
