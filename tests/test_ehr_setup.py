"""`cytokine-cds ehr-setup`: the analysts' sheet, derived from the running configuration."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from cds_service import create_app
from cds_service.settings import Settings
from tests.conftest import ROOT
from tests.servers import cytokine_cds

HOSPITAL_CODES = ROOT / "tests" / "evidence" / "data" / "hospital-codes.yaml"
HOSP = "http://hospital.example.org/fhir/CodeSystem/lab-codes"
BASE = "https://cds.hospital.example"


def ehr_setup(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return cytokine_cds("ehr-setup", *args, env={**os.environ, **(env or {})})


ENV = {
    "CYTOKINE_CDS_PUBLIC_BASE_URL": BASE,
    "CYTOKINE_CDS_LOCAL_CODES_FILE": str(HOSPITAL_CODES),
    "CYTOKINE_CDS_AUTH": "off",
}


def sheet(client: str) -> dict[str, Any]:
    result = ehr_setup("--client", client, "--format", "json", env=ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_epic_sheet_has_every_service_and_prefetch_query_with_local_codes() -> None:
    epic = sheet("epic")
    settings = Settings(
        auth="off",
        public_base_url=BASE,
        local_codes_file=HOSPITAL_CODES,  # type: ignore[arg-type]
    )
    discovery = create_app(settings).test_client().get("/cds-services").get_json()
    # The same services and queries as discovery (which Epic never reads), with their URLs.
    assert {s["id"]: {p["key"]: p["query"] for p in s["prefetch"]} for s in epic["services"]} == {
        s["id"]: s["prefetch"] for s in discovery["services"]
    }
    for service in epic["services"]:
        assert service["url"] == f"{BASE}/cds-services/{service['id']}"
        assert service["feedback_url"] == service["url"] + "/feedback"
    queries = " ".join(p["query"] for s in epic["services"] for p in s["prefetch"])
    assert f"{HOSP}|IL18" in queries  # the hospital's own code
    assert any(f"{HOSP}|IL18" in c["codes"] for c in epic["trigger_criteria"])
    assert any(c["thresholds"] for c in epic["trigger_criteria"])  # e.g. ferritin past a value
    assert (
        "Observation.Search (R4) (the Labs and Vital Signs categories for Observation)"
        in (epic["fhir_scopes"])
    )
    assert epic["jwt"]["algorithms"] == ["RS384"] and "sub" in epic["jwt"]
    assert "cds.hospital.example" in epic["link_hosts"]
    codes = {r["code"] for r in epic["override_reasons"]["reasons"]}
    assert {"clinical-judgement", "contraindication"} <= codes


def test_the_trigger_criteria_include_what_the_setting_rules_read() -> None:
    criteria = {c["when"]: c for c in sheet("epic")["trigger_criteria"]}

    def find(*words: str) -> dict[str, Any]:
        (found,) = [c for when, c in criteria.items() if all(w in when for w in words)]
        return found

    # CAR-T on day 3 with 38.2 °C, no ferritin and no cytokines answers CRS grade 2: ASTCT's
    # fever (38.0 °C, below the 38.5 °C hyperinflammation sign) and hypotension are criteria.
    fever = find("CAR-T", "ASTCT", "temperature")
    assert fever["thresholds"] == [">= 38 °C"] and "http://loinc.org|8310-5" in fever["codes"]
    assert find("CAR-T", "ASTCT", "Systolic")["thresholds"] == ["< 90 mm[Hg]"]
    # COVID-19 without cytokines, ferritin or temperature answers "needing oxygen": SpO₂ < 92 %.
    spo2 = find("COVID-19", "SpO₂")
    assert spo2["thresholds"] == ["< 92 %"] and "http://loinc.org|59408-5" in spo2["codes"]
    assert find("Sepsis", "HLA-DR (immunoparalysis").get("thresholds")
    # The label limits only the order checks read are no reason to call on a chart open.
    assert not [when for when in criteria if "label limit" in when]


def test_the_oracle_sheet_lists_patient_view_only_and_smart_scopes() -> None:
    oracle = sheet("oracle")
    assert [s["hook"] for s in oracle["services"]] == ["patient-view"]
    assert "user/Observation.read" in oracle["fhir_scopes"]
    assert oracle["jwt"]["iss"] == "https://cds-hooks.cerner.com"


def test_markdown_is_the_default_and_a_bad_client_is_refused(tmp_path: Path) -> None:
    result = ehr_setup("--client", "generic", env=ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# cytokine-cds: set-up for a CDS Hooks client")
    assert f"`{BASE}/cds-services/cytokine-storm-patient-view`" in result.stdout
    assert "## Suggested trigger criteria" in result.stdout
    refused = ehr_setup("--client", "meditech", env=ENV)
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
