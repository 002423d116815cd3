"""Cards shaped for one client, where documented clients truly conflict.

The default response is the one every documented client accepts (Epic, Oracle Health, the CDS
Hooks sandbox): one action per suggestion. A client configured otherwise in the trusted-clients
file (`cards`) gets that shape instead; nothing else about the card changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cds_service.auth.trusted_clients import CardOptions
from cds_service.cards.resources import RXNORM
from cds_service.hooks.response import Card, Suggestion

DEFAULT = CardOptions()
RXNORM_OID = "urn:oid:2.16.840.1.113883.6.88"


def shape_cards(cards: Sequence[Card], options: CardOptions | None) -> list[Card]:
    options = options or DEFAULT
    shaped = list(cards)
    if options.rxnorm_system == "oid":
        shaped = [_rxnorm_as_oid(card) for card in shaped]
    if options.alternative_order == "one-suggestion":
        shaped = [_one_alternate_suggestion(card) for card in shaped]
    return shaped


def _rxnorm_as_oid(card: Card) -> Card:
    """RxNorm codings of suggested resources named by the OID instead of the URL."""
    if not card.suggestions:
        return card
    suggestions = []
    for suggestion in card.suggestions:
        actions = [
            action.model_copy(update={"resource": _with_oid(action.resource)})
            if action.resource is not None
            else action
            for action in suggestion.actions or ()
        ]
        suggestions.append(suggestion.model_copy(update={"actions": actions or None}))
    return card.model_copy(update={"suggestions": suggestions})


def _with_oid(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("system") == RXNORM:
            return {**value, "system": RXNORM_OID}
        return {key: _with_oid(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_oid(item) for item in value]
    return value


def _one_alternate_suggestion(card: Card) -> Card:
    """'Remove the draft' + 'order the alternative' as one suggestion (Da Vinci CRD's alternate
    request: delete and create together), the create suggestion's label and uuid kept."""
    suggestions = card.suggestions or []
    kinds = [[a.type for a in s.actions or ()] for s in suggestions]
    if kinds != [["delete"], ["create"]]:
        return card
    remove, order = suggestions
    merged = Suggestion(
        label=order.label,
        uuid=order.uuid,
        isRecommended=order.isRecommended,
        actions=[*(remove.actions or ()), *(order.actions or ())],
    )
    return card.model_copy(update={"suggestions": [merged]})
