"""Shared fixtures of the evidence tests: one catalog per session (loading takes ~0.7 s)."""

import pytest

from cds_service.evidence import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()
