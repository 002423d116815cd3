"""Readiness: can this process answer hook calls as configured? Checked by GET /readyz.

Cheap enough for a probe every few seconds: the rules are in memory, the store check is one
`SELECT 1` on a pooled connection (bounded by the store's connect timeout).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cds_service.runtime import Runtime
from cds_service.store.database import READ_ONLY

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
    try:
        with store.engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        # The driver's error class only: a message may carry the database URL.
        name = type(getattr(exc, "orig", None) or exc).__name__
        log.warning("readiness: audit store %s unreachable (%s)", store.dialect, name)
        return Check("store", False, f"the audit store ({store.dialect}) is unreachable: {name}")
    return Check("store", True, f"the audit store ({store.dialect}) answers")


def readiness(runtime: Runtime, *, require_store: bool = True) -> tuple[bool, list[Check]]:
    checks = [check_rules(runtime), check_store(runtime)]
    ready = all(c.ready for c in checks if require_store or c.name != "store")
    return ready, checks
