"""Write the clinical-setting fixture patients: `python -m tests.clinical.make_fixtures`.

One synthetic patient per setting and per situation of the published-case set, as transaction
Bundles the CDS Hooks sandbox and `cytokine-cds load-fixtures` can load. The files are generated
from the case charts so the two never drift apart (a test compares them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.clinical import cases
from tests.clinical.fhir import Chart

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "patients"
# The charts that become fixture files (patient id = file name).
CHARTS: tuple[Callable[[], Chart], ...] = (
    cases.car_t_day3_grade2,
    cases.car_t_no_temperature,
    cases.car_t_after_two_doses,
    cases.car_t_with_sepsis,
    cases.iec_hs,
    cases.bispecific_grade2,
    cases.covid_hypoxic,
    cases.covid_mals_low_hladr,
    cases.covid_no_oxygen,
    cases.covid_with_pneumonia,
    cases.sepsis_il6,
    cases.sepsis_mals,
    cases.sepsis_immunoparalysis,
    cases.sjia_mas,
    cases.primary_hlh,
    cases.primary_hlh_refractory,
    cases.ebv_hlh,
    cases.isolated_il6,
    cases.febrile_hyperferritinaemia,
    cases.unreadable_il6,
)


def fixture_files() -> dict[Path, dict[str, Any]]:
    files = {}
    for make in CHARTS:
        chart = make()
        files[FIXTURES / f"{chart.patient}.json"] = chart.bundle()
    return files


def text(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for path, bundle in fixture_files().items():
        path.write_text(text(bundle), encoding="utf-8")
        print(f"wrote {path.relative_to(FIXTURES.parents[1])}")


if __name__ == "__main__":
    main()
