"""STAND-IN, to be deleted at merge: a minimal prefetch reader with the interface of
`cds_service.fhir.prefetch.read_prefetch` (built on the evidence branch), so that this branch's
pipeline and tests run end to end. The pipeline switches to the real reader by changing one import.

It tells only what the FHIR access layer needs: per key, whether the request satisfied it
(`satisfied`), said "nothing found" (`null`), left it out (`missing`), sent an error
(`error`: an OperationOutcome or a value that is no resource), or sent a search page with a
`next` link (`incomplete`); and the resources it carried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cds_service.fhir.client import bundle_resources, next_url


@dataclass(frozen=True)
class PrefetchKeyStatus:
    key: str
    state: str
    next_url: str | None = None


@dataclass(frozen=True)
class PrefetchRead:
    resources: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, PrefetchKeyStatus] = field(default_factory=dict)


def read_prefetch(prefetch: Mapping[str, Any] | None, expected_keys: Iterable[str]) -> PrefetchRead:
    read = PrefetchRead()
    for key in expected_keys:
        if prefetch is None or key not in prefetch:
            read.keys[key] = PrefetchKeyStatus(key, "missing")
            continue
        value = prefetch[key]
        if value is None:
            read.keys[key] = PrefetchKeyStatus(key, "null")
        elif not isinstance(value, dict) or value.get("resourceType") in (None, "OperationOutcome"):
            read.keys[key] = PrefetchKeyStatus(key, "error")
        elif value["resourceType"] == "Bundle":
            read.resources.extend(bundle_resources(value))
            link = next_url(value)
            state = "incomplete" if link else "satisfied"
            read.keys[key] = PrefetchKeyStatus(key, state, link)
        else:
            read.resources.append(value)
            read.keys[key] = PrefetchKeyStatus(key, "satisfied")
    return read
