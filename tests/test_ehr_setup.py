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
    assert "Observation.Search (Labs) (R4)" in epic["fhir_scopes"]
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


def test_override_reasons_list_the_topics_the_cards_send(client: Any) -> None:
    """Each card's override reasons are listed with the topic code that card carries: a setting
    card carries the state it found (crs, mals, …), not its template's name."""
    from tests.conftest import FIXTURES, hook_call

    listed = {
        (reason["code"], topic)
        for reason in sheet("generic")["override_reasons"]["reasons"]
        for topic in reason["cards"]
    }
    sent = set()
    for path in sorted((FIXTURES / "patients").glob("*.json")):
        for card in hook_call(client, "patient-view", path.stem).get_json()["cards"]:
            topic = card["source"]["topic"]["code"]
            sent |= {(reason["code"], topic) for reason in card.get("overrideReasons", [])}
    assert {topic for _, topic in sent} >= {"crs", "mals", "il6driven"}
    assert sent - listed == set()


def test_epic_scopes_use_epics_names() -> None:
    scopes = sheet("epic")["fhir_scopes"]
    assert {"Observation.Search (Labs) (R4)", "Observation.Search (Vital Signs) (R4)"} <= set(
        scopes
    )
    assert "Patient.Read (R4)" in scopes
    assert all(scope.endswith("(R4)") for scope in scopes), scopes


def test_override_reasons_name_each_topic_once() -> None:
    """Three HLH states share the topic `hlh`; the sheet lists it once per reason, in order."""
    reasons = sheet("generic")["override_reasons"]["reasons"]
    for reason in reasons:
        assert len(reason["cards"]) == len(set(reason["cards"])), reason
    (judgement,) = [r for r in reasons if r["code"] == "clinical-judgement"]
    assert "hlh" in judgement["cards"]
    assert judgement["cards"].index("mas") < judgement["cards"].index("hlh")


OXYGEN_FLOW = "http://loinc.org|3151-8"
FIO2 = "http://loinc.org|3150-0"


def test_the_trigger_criteria_include_oxygen_support_from_the_data(
    client: Any, tmp_path: Path
) -> None:
    from cds_service.api.runtime import current_runtime

    with client.application.app_context():
        knowledge = current_runtime().knowledge
    criteria = sheet("epic")["trigger_criteria"]

    def oxygen(*words: str) -> dict[str, Any]:
        (found,) = [c for c in criteria if all(w in c["when"] for w in ("oxygen support", *words))]
        return found

    # ASTCT grades from oxygen support alone (no fever needed after tocilizumab or steroids).
    astct = oxygen("CAR-T", "ASTCT")
    hours = knowledge.scores.astct.oxygen_fresh_hours
    assert f"within {hours:g} h" in astct["when"] and "tocilizumab" in astct["when"]
    # The codes are those the chart reader reads for respiratory support.
    assert astct["codes"] == knowledge.context.oxygen_codes
    assert {OXYGEN_FLOW, FIO2} <= set(astct["codes"])
    # RECOVERY's "needing oxygen" counts oxygen given.
    assert oxygen("COVID-19", "needing oxygen")["codes"] == knowledge.context.oxygen_codes

    # Derived from the rules: a hospital's rules whose COVID-19 rules read SpO₂ only get no
    # COVID-19 oxygen criterion.
    text = (ROOT / "cds_service" / "rules" / "rules.yaml").read_text(encoding="utf-8")
    text = (
        text.replace("when: [hypoxia", "when: [spo2-low")
        .replace('"not hypoxia"', '"not spo2-low"')
        .replace(', "not ventilatory_support"]', "]")
    )
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(text, encoding="utf-8")
    result = ehr_setup(
        "--client",
        "epic",
        "--format",
        "json",
        env={**ENV, "CYTOKINE_CDS_RULES_FILE": str(rules_file)},
    )
    assert result.returncode == 0, result.stderr
    whens = [c["when"] for c in json.loads(result.stdout)["trigger_criteria"]]
    assert [w for w in whens if "oxygen support" in w and "COVID-19" in w] == []
    assert [w for w in whens if "oxygen support" in w and "ASTCT" in w]


def test_a_cart_patient_graded_on_oxygen_alone_meets_a_trigger_criterion(client: Any) -> None:
    """After tocilizumab, with no fever and no labs, oxygen at 3 L/min is CRS grade 2: the
    service answers a CRS card, and only the oxygen-support criterion matches that chart."""
    from datetime import UTC, datetime

    from cds_service.api.runtime import current_runtime
    from cds_service.demo import hook_request
    from tests.conftest import load_fixture

    bundle = load_fixture("patients/case-cart-redose.json")
    bundle["entry"] = [
        e
        for e in bundle["entry"]
        if e["resource"]["resourceType"] != "Observation"
        or e["resource"]["code"]["coding"][0]["code"] == "3151-8"
    ]
    with client.application.app_context():
        service = current_runtime().services["cytokine-storm-patient-view"]
    body = hook_request(service, bundle, draft_orders=None, now=datetime.now(UTC))
    cards = client.post(f"/cds-services/{service.id}", json=body).get_json()["cards"]
    assert "crs" in [card["source"]["topic"]["code"] for card in cards]

    charted = {
        f"{coding['system']}|{coding['code']}"
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        for coding in e["resource"]["code"]["coding"]
    }
    met = [c["when"] for c in sheet("epic")["trigger_criteria"] if charted & set(c["codes"])]
    assert met and all("oxygen support" in when for when in met), met


def test_the_order_hooks_are_gated_by_the_order_not_by_a_result() -> None:
    # A result criterion on the order hooks would mean an order of tocilizumab in sepsis, with no
    # new result, is never checked: the order hooks get a criterion of their own on the drug.
    epic = sheet("epic")
    by_hooks: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for criterion in epic["trigger_criteria"]:
        by_hooks.setdefault(tuple(criterion["hooks"]), []).append(criterion)
    assert set(by_hooks) == {("patient-view",), ("order-select", "order-sign")}
    (order,) = by_hooks[("order-select", "order-sign")]
    assert order["thresholds"] == []
    assert "http://www.nlm.nih.gov/research/umls/rxnorm|612865" in order["codes"]  # tocilizumab
    assert {"actemra", "kineret", "gamifant", "decadron"} <= set(order["names"])
    # Oracle Health calls patient-view only: no order criterion there.
    assert {h for c in sheet("oracle")["trigger_criteria"] for h in c["hooks"]} == {"patient-view"}
    markdown = ehr_setup("--client", "epic", env=ENV).stdout
    assert "- order-select, order-sign: a draft medication order" in markdown
