"""Every error case answers JSON (an OperationOutcome) with its status and names the problem."""

from __future__ import annotations

import copy
import gzip
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.settings import Settings
from tests.conftest import load_fixture

SERVICE = "/cds-services/cytokine-storm-patient-view"


def outcome(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    return body["issue"][0]


def patient_view(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture("hooks/patient-view.json"))
    for path, value in changes.items():
        target = body
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[part]
        if value is ...:
            del target[leaf]
        else:
            target[leaf] = value
    return body


def test_valid_request_answers_200_with_cards(client: FlaskClient) -> None:
    response = client.post(SERVICE, json=patient_view())
    assert response.status_code == 200
    assert isinstance(response.get_json()["cards"], list)


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        SERVICE, data='{"hook": "patient-view",', content_type="application/json"
    )
    assert response.status_code == 400
    assert "not valid JSON" in outcome(response)["diagnostics"]


def test_empty_body_is_400(client: FlaskClient) -> None:
    response = client.post(SERVICE, data="", content_type="application/json")
    assert response.status_code == 400
    assert "empty" in outcome(response)["diagnostics"]


def test_json_array_body_is_400(client: FlaskClient) -> None:
    response = client.post(SERVICE, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert "must be a JSON object" in outcome(response)["diagnostics"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client: FlaskClient, content_type: str | None) -> None:
    kwargs: dict[str, Any] = {"data": json.dumps(patient_view())}
    if content_type:
        kwargs["content_type"] = content_type
    response = client.post(SERVICE, **kwargs)
    assert response.status_code == 415
    assert "Content-Type must be application/json" in outcome(response)["diagnostics"]


@pytest.mark.parametrize("encoding", ["gzip", "br", "GZIP, deflate"])
def test_a_compressed_body_is_415_naming_the_encoding(client: FlaskClient, encoding: str) -> None:
    body = gzip.compress(json.dumps(patient_view()).encode())
    response = client.post(
        SERVICE,
        data=body,
        content_type="application/json",
        headers={"Content-Encoding": encoding},
    )
    assert response.status_code == 415
    diagnostics = outcome(response)["diagnostics"]
    assert f"Content-Encoding {encoding.lower()} is not accepted" in diagnostics
    identity = client.post(
        SERVICE,
        data=json.dumps(patient_view()),
        content_type="application/json",
        headers={"Content-Encoding": "identity"},
    )
    assert identity.status_code == 200


def test_fhir_json_content_type_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        SERVICE, data=json.dumps(patient_view()), content_type="application/fhir+json"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hookInstance": ...}, "hookInstance"),
        ({"hook": ...}, "hook"),
        ({"context": ...}, "context"),
        ({"hookInstance": ""}, "hookInstance"),
        ({"context": "patient-1"}, "context"),
        ({"context__patientId": ...}, "context.patientId"),
        ({"context__userId": ...}, "context.userId"),
        ({"context__patientId": 42}, "context.patientId"),
        ({"fhirServer": "not a url"}, "fhirServer"),
        ({"fhirServer": "ftp://ehr.invalid/fhir"}, "fhirServer"),
        ({"prefetch": ["not", "an", "object"]}, "prefetch"),
        ({"fhirAuthorization": {"token_type": "Bearer"}}, "fhirAuthorization.access_token"),
        (
            {"fhirAuthorization": {"access_token": "x", "token_type": "MAC"}},
            "fhirAuthorization.token_type",
        ),
    ],
)
def test_missing_or_invalid_field_is_400_naming_it(
    client: FlaskClient, changes: dict[str, Any], field: str
) -> None:
    response = client.post(SERVICE, json=patient_view(**changes))
    assert response.status_code == 400
    issue = outcome(response)
    assert issue["expression"] == [field]
    assert field in issue["diagnostics"]


def test_token_without_fhir_server_is_400(client: FlaskClient) -> None:
    body = patient_view(fhirServer=...)
    body["fhirAuthorization"] = {"access_token": "secret-token-value", "token_type": "Bearer"}
    response = client.post(SERVICE, json=body)
    assert response.status_code == 400
    issue = outcome(response)
    assert "fhirServer is required" in issue["diagnostics"]
    assert "secret-token-value" not in response.get_data(as_text=True)


def test_hook_that_does_not_match_the_service_is_400(client: FlaskClient) -> None:
    response = client.post(SERVICE, json=patient_view(hook="order-sign"))
    assert response.status_code == 400
    issue = outcome(response)
    assert issue["expression"] == ["hook"]
    assert "'patient-view'" in issue["diagnostics"] and "'order-sign'" in issue["diagnostics"]


@pytest.mark.parametrize("path", ["/cds-services/no-such-service", "/cds-services/x/feedback"])
def test_unknown_service_is_404(client: FlaskClient, path: str) -> None:
    response = client.post(path, json=patient_view())
    assert response.status_code == 404
    assert "No CDS service with id" in outcome(response)["diagnostics"]


def test_a_trailing_slash_reaches_the_same_endpoint(client: FlaskClient) -> None:
    with_slash = client.post(SERVICE + "/", json=patient_view())
    assert with_slash.status_code == 200
    assert with_slash.get_json() == client.post(SERVICE, json=patient_view()).get_json()
    discovery = client.get("/cds-services/")
    assert discovery.status_code == 200 and discovery.get_json()["services"]
    assert client.get("/healthz/").status_code == 200


@pytest.mark.parametrize(
    "path", ["/cds-services//cytokine-storm-patient-view", SERVICE + "//feedback"]
)
def test_a_double_slash_is_a_json_404_naming_it_not_a_redirect(
    client: FlaskClient, path: str
) -> None:
    """A base URL configured with a trailing slash gives "//": Werkzeug would answer an HTML
    308 to a Location built from the Host header, which many engines do not re-POST to."""
    response = client.post(path, json=patient_view(), headers={"Host": "evil.invalid"})
    assert response.status_code == 404 and "Location" not in response.headers
    diagnostics = outcome(response)["diagnostics"]
    assert path in diagnostics and "empty segment ('//')" in diagnostics


def test_a_hook_instance_with_a_nul_character_is_400(client: FlaskClient) -> None:
    """The audit store could not keep it (PostgreSQL): the answer's record would be lost."""
    response = client.post(SERVICE, json=patient_view(hookInstance="d1577c69\u0000"))
    assert response.status_code == 400
    issue = outcome(response)
    assert issue["expression"] == ["hookInstance"] and "NUL character" in issue["diagnostics"]


def test_unknown_path_is_404_json(client: FlaskClient) -> None:
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert "/no/such/path" in outcome(response)["diagnostics"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", SERVICE, "POST"),
        ("put", SERVICE, "POST"),
        ("post", "/cds-services", "GET"),
        ("delete", "/cds-services", "GET"),
        ("get", SERVICE + "/feedback", "POST"),
    ],
)
def test_wrong_method_is_405(client: FlaskClient, method: str, path: str, allowed: str) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert method.upper() in outcome(response)["diagnostics"]
    assert allowed in response.headers["Allow"]


def test_body_over_the_limit_is_413() -> None:
    app = create_app(Settings(max_request_bytes=4096, auth="off"))
    body = patient_view()
    body["extension"] = {"org.example.padding": "x" * 5000}
    response = app.test_client().post(SERVICE, json=body)
    assert response.status_code == 413
    assert "4096 bytes" in outcome(response)["diagnostics"]
    assert "CYTOKINE_CDS_MAX_REQUEST_BYTES" in outcome(response)["diagnostics"]


def test_body_just_under_the_limit_is_accepted() -> None:
    app = create_app(Settings(max_request_bytes=4096, auth="off"))
    body = patient_view()
    size = len(json.dumps(body))
    body["extension"] = {"org.example.padding": "x" * (4096 - size - 60)}
    assert len(json.dumps(body)) <= 4096
    assert app.test_client().post(SERVICE, json=body).status_code == 200


def test_unknown_members_and_extensions_are_ignored(client: FlaskClient) -> None:
    body = patient_view()
    body["extension"] = {"com.example.timestamp": "2026-11-20T08:00:00Z"}
    body["somethingNew"] = {"from": "a later spec"}
    body["context"]["com.example.extra"] = True
    assert client.post(SERVICE, json=body).status_code == 200


@pytest.mark.parametrize(
    "extension", [[{"url": "x", "valueString": "y"}], "text", 7, None, True, {"a": [1]}]
)
def test_an_extension_of_another_shape_is_ignored(client: FlaskClient, extension: Any) -> None:
    body = patient_view()
    body["extension"] = extension
    response = client.post(SERVICE, json=body)
    assert response.status_code == 200, response.get_json()
    assert "cards" in response.get_json()


def test_unexpected_error_is_500_without_internals(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    issue = outcome(response)
    assert "reference" in issue["diagnostics"]
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


# Every endpoint that reads a JSON body, with a body it would accept.
JSON_ENDPOINTS = {
    SERVICE: lambda: patient_view(),
    SERVICE + "/feedback": lambda: {
        "feedback": [
            {
                "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-20T08:31:02.518Z",
            }
        ]
    },
    "/evaluate": lambda: load_fixture("patients/lab-bench.json"),
}


@pytest.mark.parametrize("path", sorted(JSON_ENDPOINTS))
@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested deeper than 1024"),  # a RecursionError in the stdlib
        (b'{"a": ' * 1030 + b"1" + b"}" * 1030, "nested deeper than 1024"),
        (b'{"hook": NaN}', "NaN is not a JSON value"),
        (b'{"hook": -Infinity}', "-Infinity is not a JSON value"),
        (b'{"hook": 1e999}', "too large"),
        (b'{"hook": 1' + b"0" * 400 + b"}", "too large"),  # an integer beyond a double
        ('{"hook": "patient-view"}'.encode("utf-16"), "not UTF-8"),
        # Without a byte order mark, UTF-16 reads as UTF-8 with NULs: not JSON either.
        ('{"hook": "patient-view"}'.encode("utf-16-le"), "not valid JSON"),
        # An escape of half a UTF-16 pair is no character: stored, it failed as UTF-8 (a 500).
        (b'{"hook": "patient-view", "feedback": [{"note": "\\ud800"}]}', "unpaired UTF-16"),
        (b'{"\\udfff": 1}', "unpaired UTF-16"),
    ],
    ids=[
        "deep-arrays",
        "deep-objects",
        "nan",
        "infinity",
        "overflow",
        "huge-integer",
        "utf16-bom",
        "utf16-le",
        "lone-surrogate",
        "lone-surrogate-key",
    ],
)
def test_bodies_that_are_not_json_are_400_on_every_json_endpoint(
    client: FlaskClient, path: str, raw: bytes, named: str
) -> None:
    response = client.post(path, data=raw, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert named in outcome(response)["diagnostics"]


@pytest.mark.parametrize("path", sorted(JSON_ENDPOINTS))
def test_a_utf8_byte_order_mark_and_big_integers_are_still_read(
    client: FlaskClient, path: str
) -> None:
    body = JSON_ENDPOINTS[path]()
    body["extension"] = {
        "https://example.org/counter": 2**70,  # beyond 64 bits: JSON allows it
        "https://example.org/note": "\U0001f600",  # escaped as a surrogate pair: one character
    }
    raw = b"\xef\xbb\xbf" + json.dumps(body).encode()
    assert b"\\ud83d\\ude00" in raw
    response = client.post(path, data=raw, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
