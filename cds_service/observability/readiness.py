"""Readiness: can this process answer hook calls as configured? Checked by GET /readyz.

Cheap enough for a probe every few seconds: the rules are in memory, the store check is the
store's own `ping` (one `SELECT 1` on a pooled connection).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cds_service.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    ready: bool
    detail: str


def check_rules(runtime: Runtime) -> Check:
    rules = runtime.rules
    if rules is None or not rules.patterns:
        return Check("rules", False, "no rules loaded")
    return Check("rules", True, f"rules {rules.label} loaded")


def check_store(runtime: Runtime) -> Check:
    store = runtime.store
    if store is None:
        return Check("store", True, "no audit store in this runtime")
    name = store.ping()
    if name is not None:
        log.warning("readiness: audit store %s unreachable (%s)", store.dialect, name)
        return Check("store", False, f"the audit store ({store.dialect}) is unreachable: {name}")
    return Check("store", True, f"the audit store ({store.dialect}) answers")


def readiness(runtime: Runtime, *, require_store: bool = True) -> tuple[bool, list[Check]]:
    checks = [check_rules(runtime), check_store(runtime)]
    ready = all(c.ready for c in checks if require_store or c.name != "store")
    return ready, checks
