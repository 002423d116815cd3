"""Cards shaped for one client, where documented clients truly conflict.

The default response is the one every documented client accepts (Epic, Oracle Health, the CDS
Hooks sandbox): one action per suggestion. A client configured otherwise in the trusted-clients
file (`cards`) gets that shape instead; nothing else about the card changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from cds_service.auth.trusted_clients import CardOptions
from cds_service.hooks.response import Card, Suggestion

DEFAULT = CardOptions()


def shape_cards(cards: Sequence[Card], options: CardOptions | None) -> list[Card]:
    options = options or DEFAULT
    if options.alternative_order == "two-suggestions":
        return list(cards)
    return [_one_alternate_suggestion(card) for card in cards]


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
