"""A hospital's knowledge files are checked before `cytokine-cds serve` binds anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.servers import cytokine_cds


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
