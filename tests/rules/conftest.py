"""Rules tests share one loaded runtime (catalog, rules, card templates): read-only."""

from __future__ import annotations

import pytest

from cds_service.composition import build_runtime
from cds_service.runtime import Runtime
from cds_service.settings import Settings


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    return build_runtime(Settings(auth="off"))
