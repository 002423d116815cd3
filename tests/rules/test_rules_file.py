"""The rules file is data a hospital reviews and changes; an invalid one stops start-up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.evidence import Catalog, load_catalog
from cds_service.rules.conditions import COMPUTED_FACTS
from cds_service.rules.loader import default_rules_text, load_rules
from cds_service.settings import Settings
from cds_service.yamlfile import ConfigFileError
from tests.conftest import hook_call
from tests.servers import cytokine_cds

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


def refused(catalog: Catalog, tmp_path: Path, old: str, new: str, message: str) -> tuple[Path, str]:
    """The edited rules file and the error that refuses it (matching `message`)."""
    path = edited(tmp_path, old, new)
    with pytest.raises(ConfigFileError, match=message) as error:
        load_rules(catalog, path)
    return path, str(error.value)


def line_of(path: Path, fragment: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if fragment in line)


def test_shipped_rules_cite_a_source_for_every_threshold(catalog: Catalog) -> None:
    rules = load_rules(catalog)
    for marker in rules.markers.values():
        for criterion in marker.criteria:
            source = rules.sources[criterion.source]
            assert source.citation and source.short
    for pattern in rules.patterns.values():
        assert rules.sources[pattern.source].citation


def test_the_facts_as_cards_name_them_carry_no_identifier() -> None:
    """A fact's label is what a card says when it cannot be judged: words, not `primary_hlh`
    or `option.hlh94_response_days`."""
    for fact, label in COMPUTED_FACTS.items():
        assert "`" not in label and "option." not in label, fact
        assert not re.search(r"\b[a-z0-9]+_[a-z0-9_]+\b", label), (fact, label)


def test_every_criterion_and_drug_rule_names_its_population_and_source(catalog: Catalog) -> None:
    rules = load_rules(catalog)
    for criteria in rules.criteria_sets.values():
        assert criteria.population and rules.sources[criteria.source].citation
    assert rules.diagnostic_bar.population
    for setting_id, setting in rules.settings.items():
        for state in setting.states:
            assert rules.sources[state.source].citation, state.id
        for advice in setting.advice:
            assert advice.population and rules.sources[advice.source].citation, advice.id
        for avoid in setting.avoid:
            assert avoid.reason and rules.sources[avoid.source].citation, avoid.id
        # Every drug suggestion is gated on a state of its own setting.
        gates = {state for a in setting.advice for state in a.states}
        assert gates <= {s.id for s in setting.states}, setting_id
    for check in rules.safety:
        assert rules.sources[check.source].citation and check.finding
    for limit in rules.dose_limits:
        assert limit.population and rules.sources[limit.source].citation and limit.finding
    # Every published source says whom its findings hold for.
    for source_id, source in rules.sources.items():
        assert source.population or source_id == "project", source_id


def test_every_drug_rule_for_adults_records_its_age_limit(catalog: Catalog) -> None:
    """A drug rule whose population is adults carries `ages` (18, with a source), so it is
    never drafted for a patient recorded as a child; CRS tocilizumab carries the label's 2."""
    rules = load_rules(catalog)
    for setting in rules.settings.values():
        for advice in setting.advice:
            if advice.drug and "adult" in advice.population.lower():
                assert advice.ages is not None and advice.ages.min_years == 18, advice.id
            if advice.ages is not None:
                assert rules.sources[advice.ages.source].citation, advice.id
    crs = next(a for a in rules.settings["iec"].advice if a.id == "crs-tocilizumab")
    assert crs.ages is not None and crs.ages.min_years == 2


def test_an_age_limit_with_an_unknown_source_names_the_line(
    catalog: Catalog, tmp_path: Path
) -> None:
    path = edited(
        tmp_path, "min_years: 2\n          source: le2018", "min_years: 2\n          source: le2099"
    )
    with pytest.raises(ConfigFileError, match="unknown source 'le2099'") as error:
        load_rules(catalog, path)
    assert "line " in str(error.value)


def test_a_dose_limit_on_an_unknown_drug_names_the_line(catalog: Catalog, tmp_path: Path) -> None:
    path = edited(
        tmp_path, "  - id: tocilizumab-max-infusion\n    drugs: [tocilizumab]",
        "  - id: tocilizumab-max-infusion\n    drugs: [tocilizumabb]",
    )  # fmt: skip
    with pytest.raises(ConfigFileError, match="unknown drug 'tocilizumabb'") as error:
        load_rules(catalog, path)
    assert f"line {line_of(path, 'tocilizumabb')}" in str(error.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("- {below_kg: 30, mg_per_kg: 12}", "- {below_kg: 30, mg_per_kg: 12, mg: 400}",
         "give either mg_per_kg or mg"),
        ("- {over_kg: 40, mg: 400, source: recovery2021}",
         "- {over_kg: 40, below_kg: 30, mg: 400, source: recovery2021}",
         "over_kg must be below below_kg"),
        ("- {over_kg: 40, mg: 400, source: recovery2021}",
         "- {over_kg: 40, mg: 400, source: recovery2012}", "unknown source 'recovery2012'"),
        ("    settings: [iec]\n    by_weight:",
         "    settings: [iec]\n    max_mg: 800\n    by_weight:", "give either max_mg or by_weight"),
    ],
)  # fmt: skip
def test_a_dose_limit_by_weight_that_cannot_mean_one_thing_names_the_line(
    catalog: Catalog, tmp_path: Path, old: str, new: str, message: str
) -> None:
    _, error = refused(catalog, tmp_path, old, new, message)
    assert "line " in error


def test_a_dose_limit_by_weight_needs_the_body_weight_in_the_catalog() -> None:
    """A hospital catalog without `body_weight` cannot judge a dose by weight: start-up says so
    rather than never firing."""
    catalog = load_catalog()
    analytes = {a: catalog.analyte(a) for a in catalog.analyte_ids if a != "body_weight"}
    without = Catalog(analytes, {}, {}, {}, {}, catalog.ucum_systems, catalog.local_code_system)
    with pytest.raises(ConfigFileError, match="unknown analyte 'body_weight'"):
        load_rules(without)


def test_an_unknown_setting_has_no_mismatch_and_no_drug(catalog: Catalog) -> None:
    unknown = load_rules(catalog).settings["unknown"]
    assert unknown.avoid == [] and unknown.advice == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('when: ["crs_grade >= 2"]', 'when: ["crs_grade >= two"]', "unknown fact 'two'"),
        ('when: ["crs_grade >= 2"]', 'when: ["crs_grade >=> 2"]', "cannot read condition"),
        ("when: [hypoxia, crp-high]", "when: [hypoxia, crp-hihg]", "unknown fact 'crp-hihg'"),
        ("state: crs\n        drug: tocilizumab", "state: cr\n        drug: tocilizumab",
         "unknown state 'cr'"),
    ],
)  # fmt: skip
def test_a_bad_setting_rule_names_the_line(
    catalog: Catalog, tmp_path: Path, old: str, new: str, message: str
) -> None:
    path, error = refused(catalog, tmp_path, old, new, message)
    assert str(path) in error and "line " in error


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
    result = cytokine_cds(
        "serve",
        "--port",
        "1",
        env={"CYTOKINE_CDS_AUTH": "off", "CYTOKINE_CDS_RULES_FILE": str(path), "PATH": ""},
    )
    assert result.returncode == 2
    assert f"{path}: line {line_of(path, 'nobody2099')}" in result.stderr
    assert "unknown source 'nobody2099'" in result.stderr


def test_a_hospital_can_raise_a_threshold(catalog: Catalog, tmp_path: Path) -> None:
    """With a 200 mg/L CRP threshold the RECOVERY patient (CRP 150) gets dexamethasone only."""
    crp = '      - {comparison: ">=", value: 75, unit: mg/L, source: recovery2021}'
    path = edited(tmp_path, crp, crp.replace("value: 75", "value: 200"))
    assert load_rules(catalog, path).markers["crp-high"].criteria[0].threshold == 200
    stricter = create_app(Settings(auth="off", rules_file=path))
    cards = hook_call(stricter.test_client(), "patient-view", "case-covid-recovery").get_json()
    drafted = [
        a["resource"]["medicationCodeableConcept"]["text"]
        for c in cards["cards"]
        for s in c.get("suggestions") or []
        for a in s["actions"]
    ]
    assert drafted == ["dexamethasone"]


def test_a_hospital_can_choose_anakinra_for_sepsis_mals(tmp_path: Path) -> None:
    option = "  sepsis_mals_anakinra:\n    value: false"
    path = edited(tmp_path, option, option.replace("false", "true"))
    chosen = create_app(Settings(auth="off", rules_file=path))
    (card,) = hook_call(chosen.test_client(), "patient-view", "case-sepsis-mals").get_json()[
        "cards"
    ]
    (suggestion,) = card["suggestions"]
    assert suggestion["actions"][0]["resource"]["medicationCodeableConcept"]["text"] == "anakinra"
