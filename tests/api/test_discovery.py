"""Discovery: three services, one per hook, with prefetch templates inside the 2.0 subset."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from flask.testing import FlaskClient

EXPECTED = {
    "cytokine-storm-patient-view": "patient-view",
    "cytokine-storm-order-select": "order-select",
    "cytokine-storm-order-sign": "order-sign",
}
# CDS Hooks 2.0 "Prefetch query restrictions": these parameters, token equality, no modifiers.
# `status` is a token parameter (active orders only).
ALLOWED_SEARCH_PARAMS = {
    "patient", "code", "combo-code", "_sort", "_count", "date", "category", "status",
}  # fmt: skip
CHART_KEYS = {
    "conditions": "Condition",
    "procedures": "Procedure",
    "medicationAdministrations": "MedicationAdministration",
    "medicationRequests": "MedicationRequest",
    "medicationStatements": "MedicationStatement",
    "allergies": "AllergyIntolerance",
}
TOKEN = re.compile(r"\{\{([^}]*)\}\}")


def test_discovery_lists_the_three_services(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    assert {s["id"]: s["hook"] for s in services} == EXPECTED
    for service in services:
        assert service["title"] and service["description"] and service["usageRequirements"]
        assert set(service) <= {
            "id",
            "hook",
            "title",
            "description",
            "prefetch",
            "usageRequirements",
        }


def test_prefetch_templates_use_only_2_0_tokens_and_query_forms(client: FlaskClient) -> None:
    for service in client.get("/cds-services").get_json()["services"]:
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        assert {"cytokines", "labs", "vitals", *CHART_KEYS} <= set(prefetch)
        for key, resource_type in CHART_KEYS.items():
            assert prefetch[key].startswith(f"{resource_type}?patient={{{{context.patientId}}}}&")
        for template in prefetch.values():
            assert set(TOKEN.findall(template)) == {"context.patientId"}
            path, _, query = template.partition("?")
            assert re.fullmatch(r"[A-Z][A-Za-z]+(/\{\{context\.patientId\}\})?", path)
            for name, _value in parse_qsl(query):
                assert name in ALLOWED_SEARCH_PARAMS, name
                assert ":" not in name, "no search modifiers"
            if query:
                params = dict(parse_qsl(query))
                assert params["patient"] == "{{context.patientId}}"
                assert int(params["_count"]) > 0
            if path == "Observation":
                assert params["_sort"] == "-date"
                codes = params.get("code") or params["combo-code"]
                assert all("|" in code for code in codes.split(","))


def test_each_listed_service_answers_at_its_url(client: FlaskClient) -> None:
    from tests.conftest import load_fixture

    for service in client.get("/cds-services").get_json()["services"]:
        body = load_fixture(f"hooks/{service['hook']}.json")
        response = client.post(f"/cds-services/{service['id']}", json=body)
        assert response.status_code == 200, response.get_json()
        assert urlsplit(f"http://x/cds-services/{service['id']}").path.count("/") == 2


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_observation_templates_ask_for_exactly_what_the_rules_and_scores_read() -> None:
    from cds_service.cards.resources import PanelCode
    from cds_service.cards.templates import default_cards_dir
    from cds_service.hooks.prefetch_plan import analytes_read, prefetch_queries
    from cds_service.knowledge import load_knowledge

    knowledge = load_knowledge(None, None, default_cards_dir(), PanelCode("s", "c", "d"))
    queries = prefetch_queries(knowledge)
    asked = {
        code
        for key in ("cytokines", "labs", "vitals", "weight")
        for code in dict(parse_qsl(queries[key].partition("?")[2])).get("code", "").split(",")
        + dict(parse_qsl(queries[key].partition("?")[2])).get("combo-code", "").split(",")
        if code
    }
    catalog = knowledge.catalog
    read = analytes_read(knowledge)
    oxygen = set(knowledge.context.oxygen_codes)  # flow, FiO2, device: read by the chart reader
    for analyte in catalog.analyte_ids:
        codes = set(catalog.code_query(analyte).split(","))
        assert (codes <= asked) == (analyte in read or codes <= oxygen), analyte
    assert "leukocytes" in read and "triglycerides" in read  # HScore, HLH-2004
    assert "http://loinc.org|3151-8" in asked  # oxygen flow, read by the chart reader


def test_descriptions_say_what_the_service_does(client: FlaskClient) -> None:
    """Setting-aware advice, order checks against the recorded setting's sourced rules, the
    multiplex panel; never "the targeted inhibitor" for a pattern, as before settings."""
    import tomllib
    from pathlib import Path

    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    package = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["description"]
    texts = [s["description"] for s in services.values()] + [package]
    for text in texts:
        assert "setting" in text, text
        assert "targeted inhibitor" not in text and "subtype" not in text, text
    view = services["cytokine-storm-patient-view"]["description"]
    assert "multiplex panel" in view and "no setting" in view
    for order_hook in ("cytokine-storm-order-select", "cytokine-storm-order-sign"):
        text = services[order_hook]["description"]
        assert "recorded setting's sourced rules" in text, text
        assert "cytokine pattern" not in text and "no recent cytokine result" not in text, text
    assert "multiplex panel" in package and "recorded setting" in package
