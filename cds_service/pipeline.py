"""One hook call, end to end: request -> lab evidence -> rules -> cards."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from cds_service.errors import ApiError
from cds_service.fhir.gather import DataGap, DataUnavailable, Gathered

# Stand-in until the evidence branch's cds_service.fhir.prefetch lands (same interface).
from cds_service.fhir.interim_prefetch import read_prefetch
from cds_service.fhir.server_policy import ServerRefused
from cds_service.hooks.request import HookRequest
from cds_service.hooks.response import Card, CdsResponse, Source
from cds_service.hooks.services import ServiceSpec
from cds_service.runtime import Runtime


def answer_hook(
    runtime: Runtime, service: ServiceSpec, request: HookRequest, context: BaseModel
) -> CdsResponse:
    gathered = gather_data(runtime, service, request)
    # The subtype engine is not wired in yet: it will turn gathered.resources into cards.
    cards: list[Card] = []
    if gathered.gaps:
        cards.append(data_gap_card(gathered.gaps))
    return CdsResponse(cards=cards)


# --- FHIR data access (issue 3) ------------------------------------------------------------------


def gather_data(runtime: Runtime, service: ServiceSpec, request: HookRequest) -> Gathered:
    """Prefetch plus what the FHIR server gives for the rest; 400 / 412 when that cannot be."""
    prefetch = read_prefetch(request.prefetch, service.prefetch)
    auth = request.fhirAuthorization
    token = auth.access_token.get_secret_value() if auth is not None else None
    try:
        return runtime.fhir.gather(
            prefetch, service.prefetch, request.context, request.fhirServer, token
        )
    except ServerRefused as exc:
        raise ApiError(400, exc.message, field="fhirServer") from None
    except DataUnavailable as exc:
        raise ApiError(412, exc.message) from None


def data_gap_card(gaps: Sequence[DataGap]) -> Card:
    """The info card naming the data that could not be read, so no advice looks complete."""
    lines = "\n".join(
        f"- **{gap.key}**{' (only partly read)' if gap.partial else ''}: {gap.reason}."
        for gap in gaps
    )
    return Card(
        summary="Some patient data could not be read; the advice may be incomplete",
        detail="The service could not read all the data it uses:\n\n" + lines,
        indicator="info",
        source=Source(label="Cytokine storm CDS: data access"),
    )
