"""A hospital's knowledge files are checked before `cytokine-cds serve` binds anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cds_service.cards.resources import PanelCode
from cds_service.cards.templates import default_cards_dir
from cds_service.fhir.draft_orders import medication_orders
from cds_service.knowledge import load_knowledge
from cds_service.rules.orders import identify_drug
from tests.servers import cytokine_cds

PANEL = PanelCode("http://loinc.org", "panel", "Cytokine panel")


def serve_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return cytokine_cds("serve", "--port", "1", env={"CYTOKINE_CDS_AUTH": "off", "PATH": "", **env})


def test_invalid_local_codes_file_stops_start_up_naming_file_and_line(tmp_path: Path) -> None:
    codes = tmp_path / "hospital-codes.yaml"
    codes.write_text(
        "codes:\n"
        '  - {analyte: il18, system: "http://hospital.example.org/lab", code: IL18}\n'
        '  - {analyte: il99, system: "http://hospital.example.org/lab", code: IL99}\n'
    )
    result = serve_with({"CYTOKINE_CDS_LOCAL_CODES_FILE": str(codes)})
    assert result.returncode == 2
    assert f"{codes}: line 3" in result.stderr
    assert "unknown analyte 'il99'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_card_folder_stops_start_up(tmp_path: Path) -> None:
    result = serve_with({"CYTOKINE_CDS_CARDS_DIR": str(tmp_path / "nowhere")})
    assert result.returncode == 2
    assert "card template folder not found" in result.stderr


def test_a_drug_name_of_the_chart_codes_names_its_orders_too(tmp_path: Path) -> None:
    """A hospital that teaches the chart reader a local brand teaches the order checks too:
    otherwise an order by that name would pass every check unchecked."""
    path = tmp_path / "context.yaml"
    path.write_text("drugs:\n  tocilizumab:\n    names: [Tocibrand]\n")
    knowledge = load_knowledge(None, None, default_cards_dir(), PANEL, path)
    request = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"text": "TOCIBRAND 20 MG/ML"},
    }
    (order,) = medication_orders(request)
    assert identify_drug(order, knowledge.rules) == "tocilizumab"
    shipped = load_knowledge(None, None, default_cards_dir(), PANEL)
    assert identify_drug(order, shipped.rules) is None
