"""The knowledge the service decides with: analyte catalog, rules and card templates.

Loaded and validated together, once, at start-up; read-only afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cds_service.cards.build import CardBuilder, check_kit
from cds_service.cards.resources import PanelCode
from cds_service.cards.templates import CardKit
from cds_service.evidence import Catalog, load_catalog
from cds_service.rules.loader import Rules, load_rules


@dataclass(frozen=True)
class Knowledge:
    catalog: Catalog
    rules: Rules
    cards: CardBuilder


@lru_cache(maxsize=8)
def load_knowledge(
    local_codes_file: Path | None, rules_file: Path | None, cards_dir: Path, panel: PanelCode
) -> Knowledge:
    """Catalog, rules and card templates, validated together. Raises ConfigFileError.

    Cached per set of files: the objects are read-only, and several apps in one process (tests,
    the CLI, screening workers) need not pay the UCUM set-up twice.
    """
    catalog = load_catalog(local_codes_file)
    rules = load_rules(catalog, rules_file)
    builder = CardBuilder(CardKit(cards_dir), rules, catalog, panel)
    check_kit(builder)
    return Knowledge(catalog, rules, builder)
