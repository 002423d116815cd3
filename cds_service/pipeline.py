"""One hook call, end to end: request -> lab evidence -> rules -> cards."""

from __future__ import annotations

from pydantic import BaseModel

from cds_service.hooks.request import HookRequest
from cds_service.hooks.response import CdsResponse
from cds_service.hooks.services import ServiceSpec
from cds_service.runtime import Runtime


def answer_hook(
    runtime: Runtime, service: ServiceSpec, request: HookRequest, context: BaseModel
) -> CdsResponse:
    # The subtype engine is not wired in yet: nothing to say is an empty card list.
    return CdsResponse(cards=[])
