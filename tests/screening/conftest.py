"""A synthetic census (healthy patients with planted fixture patients) and the CLI, in-process."""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.cli import main
from cds_service.screening.census import CensusSpec, write_census
from tests.conftest import FIXTURES

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
AS_OF_TEXT = "2026-11-20T12:00:00Z"
HEALTHY = 300
# Each planted fixture patient and the cards a patient-view call gives it (one per pattern);
# the near-threshold and no-inflammation patients are planted too and must not be listed.
EXPECTED_CARDS = {
    "css-il6-covid": ["il6driven"],
    "css-il1-mals": ["mals"],  # sepsis recorded: the MALS setting card
    "css-ifng-hlh": ["ifngdriven"],
    "css-immunoparalysis": ["immunoparalysis"],
    "css-mixed": ["mixedpattern"],
    "css-multiplex-needed": ["multiplexassayneeded"],
    "css-stale-cytokines": ["multiplexassayneeded"],
    "css-near-threshold": [],
    "css-no-inflammation": [],
}


def card_type(card: dict[str, Any]) -> str:
    """A card's type as the worklist names it: its source.topic code."""
    return str(card["source"]["topic"]["code"])


def planted_files() -> list[Path]:
    return [FIXTURES / "patients" / f"{name}.json" for name in EXPECTED_CARDS]


@dataclass(frozen=True)
class Run:
    code: int
    stderr: str
    out: Path

    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def census(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The census as one file per type (read-only: copy it before changing it)."""
    folder = tmp_path_factory.mktemp("census")
    write_census(CensusSpec(HEALTHY, AS_OF, planted_files(), seed=7), folder)
    return folder


@pytest.fixture(scope="session")
def split_gzip_census(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same census split into files of 700 lines, gzip-compressed."""
    folder = tmp_path_factory.mktemp("census-split-gz")
    write_census(
        CensusSpec(HEALTHY, AS_OF, planted_files(), seed=7, lines_per_file=700, gzip=True), folder
    )
    return folder


def copy_census(census: Path, target: Path) -> Path:
    shutil.copytree(census, target)
    return target


def screen(capsys: pytest.CaptureFixture[str], source: Path | str, out: Path, *options: str) -> Run:
    capsys.readouterr()
    code = main(["screen", str(source), "--out", str(out), "--as-of", AS_OF_TEXT, *options])
    return Run(code, capsys.readouterr().err, out)


def gzip_file(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    return target
