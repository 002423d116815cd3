"""Profile page fixtures: the real knowledge files, assessments of the fixture patients."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cds_service.composition import build_runtime
from cds_service.decision import Decision
from cds_service.demo import FIXTURE_TIME
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from tests.conftest import FIXTURES, decide_bundle

SUBTYPE_PATIENTS = {
    "css-il1-mals": "il1-driven",
    "css-ifng-hlh": "ifng-driven",
    "css-il6-covid": "il6-driven",
    "css-immunoparalysis": "immunoparalysis",
    "css-mixed": "mixed-pattern",
    "css-multiplex-needed": "multiplex-assay-needed",
    "css-stale-cytokines": "multiplex-assay-needed",
}


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    return build_runtime(Settings(auth="off"))


def patient_bundle(patient: str) -> Any:
    return json.loads((FIXTURES / "patients" / f"{patient}.json").read_text(encoding="utf-8"))


def evaluated(runtime: Runtime, patient: str) -> Decision:
    """The fixture patient assessed at the time its results are dated for."""
    return decide_bundle(runtime.knowledge, patient_bundle(patient), FIXTURE_TIME)
