"""The rules file is data a hospital reviews and changes; an invalid one stops start-up."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.evidence import Catalog, load_catalog
from cds_service.rules.loader import default_rules_text, load_rules
from cds_service.settings import Settings
from cds_service.yamlfile import ConfigFileError
from tests.conftest import hook_call
from tests.servers import BIN

IL6_LINE = '      - {comparison: ">", value: 80, unit: pg/mL, source: herold2020}'


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def edited(tmp_path: Path, old: str, new: str) -> Path:
    text = default_rules_text()
    assert old in text
    path = tmp_path / "rules.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, fragment: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if fragment in line)


def test_shipped_rules_cite_a_source_for_every_threshold(catalog: Catalog) -> None:
    rules = load_rules(catalog)
    for marker in rules.markers.values():
        for criterion in marker.criteria:
            source = rules.sources[criterion.source]
            assert source.citation and source.short
    for treatment in rules.treatments.values():
        assert rules.sources[treatment.source].citation


@pytest.mark.parametrize(
    ("new", "fragment", "message"),
    [
        (IL6_LINE.replace("herold2020", "nobody2099"), "nobody2099", "unknown source 'nobody2099'"),
        (IL6_LINE.replace("pg/mL", "mmol/L"), "mmol/L, source: herold", "not an accepted unit"),
        (IL6_LINE.replace('">"', '"=>"'), '"=>"', "comparison"),
        (
            IL6_LINE.replace("value: 80, unit: pg/mL", "uln_multiple: 0"),
            "uln_multiple: 0",
            "greater",
        ),
        (IL6_LINE.replace("{comparison", "{comparison: [,"), "[,", "not valid YAML"),
    ],
)
def test_invalid_rules_file_names_the_line_and_problem(
    catalog: Catalog, tmp_path: Path, new: str, fragment: str, message: str
) -> None:
    path = edited(tmp_path, IL6_LINE, new)
    with pytest.raises(ConfigFileError) as error:
        load_rules(catalog, path)
    text = str(error.value)
    assert str(path) in text
    assert f"line {line_of(path, fragment)}" in text
    assert message in text


def test_unknown_marker_in_an_axis_is_named(catalog: Catalog, tmp_path: Path) -> None:
    path = edited(tmp_path, "pivotal: [il6-high]", "pivotal: [il6-hihg]")
    with pytest.raises(ConfigFileError, match="unknown marker 'il6-hihg'") as error:
        load_rules(catalog, path)
    assert f"line {line_of(path, 'il6-hihg')}" in str(error.value)


def test_invalid_rules_file_stops_start_up(tmp_path: Path) -> None:
    path = edited(tmp_path, IL6_LINE, IL6_LINE.replace("herold2020", "nobody2099"))
    with pytest.raises(ConfigFileError, match="unknown source"):
        create_app(Settings(auth="off", rules_file=path))
    result = subprocess.run(
        [str(BIN / "cytokine-cds"), "serve", "--port", "1"],
        env={"CYTOKINE_CDS_AUTH": "off", "CYTOKINE_CDS_RULES_FILE": str(path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{path}: line {line_of(path, 'nobody2099')}" in result.stderr
    assert "unknown source 'nobody2099'" in result.stderr


def test_a_hospital_can_raise_a_threshold(tmp_path: Path) -> None:
    """The IL-6 patient (320 pg/mL) is no longer IL-6-driven with a 500 pg/mL threshold."""
    app = create_app(Settings(auth="off"))
    card = hook_call(app.test_client(), "patient-view", "css-il6-covid").get_json()["cards"][0]
    assert card["source"]["topic"]["code"] == "il6driven"

    path = edited(tmp_path, IL6_LINE, IL6_LINE.replace("value: 80", "value: 500"))
    stricter = create_app(Settings(auth="off", rules_file=path))
    response = hook_call(stricter.test_client(), "patient-view", "css-il6-covid").get_json()
    assert response == {"cards": []}  # all cytokines measured, none past its threshold
