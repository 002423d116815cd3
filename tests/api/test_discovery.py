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
ALLOWED_SEARCH_PARAMS = {"patient", "code", "combo-code", "_sort", "_count", "date", "category"}
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
        assert {"cytokines", "labs"} <= set(prefetch)
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
