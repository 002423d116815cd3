"""The chart-context catalog: shipped data, a hospital's additions, errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.context import ContextCatalogError, load_context_catalog, read_chart
from tests.test_knowledge import serve_with

from .builders import ICD10CM, NOW, condition, med, observation, text

HOSPITAL = Path(__file__).parent / "data" / "hospital-context.yaml"


def test_every_shipped_code_is_marked_v_s_or_unverified() -> None:
    catalog = load_context_catalog()
    statuses = {match.status for matches in catalog._codes.exact.values() for match in matches} | {
        match.status for entries in catalog._codes.prefixes.values() for _, match in entries
    }
    assert statuses <= {"V", "S", "unverified"}


def test_hospital_codes_add_settings_drugs_and_devices() -> None:
    shipped, local = load_context_catalog(), load_context_catalog(HOSPITAL)
    primary = condition("http://hospital.example.org/dx", "FHL-PRF1")
    assert read_chart([primary], shipped, NOW).settings == ()
    (finding,) = read_chart([primary], local, NOW).settings
    assert (finding.setting, finding.kind) == ("hlh", "primary")
    epic = med(
        "MedicationAdministration",
        {
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.698288", "code": "12345"}
                ]
            }
        },
    )
    assert [d.drug for d in read_chart([epic], local, NOW).drugs] == ["tocilizumab"]
    assert read_chart([epic], shipped, NOW).drugs == ()
    airvo = observation("107117-4", valueString="Airvo 40 L/min")
    assert read_chart([airvo], local, NOW).oxygen.level == "high-flow"  # type: ignore[union-attr]
    # a free-text diagnosis the hospital chose to recognise makes an HLH malignancy-associated
    dlbcl = {
        "resourceType": "Condition",
        "id": "d",
        "code": {"text": "Diffuse large B-cell lymphoma"},
    }
    chart = read_chart([condition(ICD10CM, "D76.1"), dlbcl], local, NOW)
    assert [(f.setting, f.kind) for f in chart.settings] == [("hlh", "malignancy")]
    # shipped names still work after the merge
    assert [
        d.drug
        for d in read_chart([med("MedicationAdministration", text("Actemra"))], local, NOW).drugs
    ] == ["tocilizumab"]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("conditions:\n  covid19:\n    settings: [covid]\n", 3, "settings"),
        ("conditions:\n  new-thing:\n    kind: x\n", 3, "a new condition needs `display`"),
        ("drugs:\n  newdrug:\n    names: [x]\n", 3, "a new drug needs `class`"),
        ("procedures:\n  car-t-infusion:\n    codes: [{system: x}]\n", 3, "exactly one of"),
        ("devices:\n  jetpack: {names: [x]}\n", 2, "jetpack"),
        ("conditions: [1, 2\n", 2, "not valid YAML"),
    ],
)
def test_invalid_hospital_file_names_file_and_line(
    tmp_path: Path, content: str, line: int, message: str
) -> None:
    path = tmp_path / "context.yaml"
    path.write_text(content)
    with pytest.raises(ContextCatalogError) as raised:
        load_context_catalog(path)
    assert str(raised.value).startswith(f"{path}: line {line}")
    assert message in str(raised.value)


def test_missing_or_empty_hospital_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ContextCatalogError, match="cannot be read"):
        load_context_catalog(tmp_path / "nowhere.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ContextCatalogError, match="empty"):
        load_context_catalog(tmp_path / "empty.yaml")


def test_invalid_context_codes_file_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "context.yaml"
    path.write_text("drugs:\n  tocilizumab:\n    names: [toci]\n  newdrug:\n    names: [x]\n")
    result = serve_with({"CYTOKINE_CDS_CONTEXT_CODES_FILE": str(path)})
    assert result.returncode == 2
    assert f"{path}: line 5" in result.stderr and "needs `class`" in result.stderr
    assert "Traceback" not in result.stderr
