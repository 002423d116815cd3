"""Shared test fixtures: settings isolated from the developer's environment, the app, files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, never from the shell that runs pytest."""
    for name in list(os.environ):
        if name.startswith("CYTOKINE_CDS_"):
            monkeypatch.delenv(name)


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


# --- audit trail and feedback (issue 5) ------------------------------------------------------
@pytest.fixture(autouse=True)
def _data_dir_in_tmp(
    _isolated_environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Settings() a test builds (and every server it starts) keeps its audit store and
    patient-key secret under the test's tmp_path, never in ./data."""
    monkeypatch.setenv("CYTOKINE_CDS_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client
