"""What a served process prints (app log lines and gunicorn's own) never holds a patient id, a
FHIR access token or a client JWT, even at DEBUG; and every line is one JSON object."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.composition import build_runtime
from cds_service.demo import FIXTURE_TIME, hook_request, shift_dates
from cds_service.fhir.fixture_upload import upload
from cds_service.settings import Settings
from tests.conftest import FIXTURES, load_fixture
from tests.observability.served import served

ISSUER = "https://ehr.logging-test.example"
VIEW = "cytokine-storm-patient-view"
SIGN = "cytokine-storm-order-sign"


class Client:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        self.issued: list[str] = []

    def jwks(self) -> dict[str, Any]:
        public = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": "k1", "use": "sig"}]}

    def token(self, audience: str, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300}
        body["jti"] = str(uuid.uuid4())
        token = jwt.encode({**body, **claims}, self.key, algorithm="ES384", headers={"kid": "k1"})
        self.issued.append(token)
        return token


def patient_bundle(patient_id: str, folder: Path) -> tuple[dict[str, Any], Path]:
    """lab-bench under a patient id found nowhere else, its dates moved to now, as a Bundle and
    as a file to upload."""
    text = (FIXTURES / "patients/lab-bench.json").read_text(encoding="utf-8")
    text = text.replace('"lab-bench"', f'"{patient_id}"').replace(
        "Patient/lab-bench", f"Patient/{patient_id}"
    )
    bundle = shift_dates(json.loads(text), datetime.now(UTC) - FIXTURE_TIME)
    path = folder / f"{patient_id}.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return bundle, path


def test_no_patient_id_token_or_jwt_in_any_output(tmp_path: Path, fhir_server: str) -> None:
    patient_id = f"pt-{uuid.uuid4().hex}"
    access_token = f"fhir-access-{uuid.uuid4().hex}"
    bundle, bundle_file = patient_bundle(patient_id, tmp_path)
    for _ in upload(fhir_server, [bundle_file]):
        pass
    client = Client()
    clients_file = tmp_path / "trusted-clients.json"
    clients_file.write_text(json.dumps({"clients": [{"iss": ISSUER, "jwks": client.jwks()}]}))
    env = {
        "CYTOKINE_CDS_AUTH": "on",
        "CYTOKINE_CDS_TRUSTED_CLIENTS": str(clients_file),
        "CYTOKINE_CDS_LOG_LEVEL": "DEBUG",
        "CYTOKINE_CDS_FHIR_ALLOW_LOOPBACK": "true",
    }
    runtime = build_runtime(Settings(auth="off"))
    with_prefetch = hook_request(runtime.services[VIEW], bundle)
    from_fhir = hook_request(
        runtime.services[VIEW], bundle, prefetch=False, fhir_server=fhir_server
    )
    from_fhir["fhirAuthorization"] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/Observation.read",
        "subject": "cds-service",
        "patient": patient_id,
    }
    order = hook_request(
        runtime.services[SIGN], bundle, draft_orders=load_fixture("orders/anakinra.json")
    )
    wrong_hook = {**with_prefetch, "hook": "order-sign"}

    with served(tmp_path, env, workers=2) as server:

        def post(service: str, body: dict[str, Any], **claims: Any) -> requests.Response:
            url = f"{server.base}/cds-services/{service}"
            headers = {"Authorization": f"Bearer {client.token(url, **claims)}"}
            return requests.post(url, json=body, headers=headers, timeout=30)

        answered = post(VIEW, with_prefetch)
        assert answered.status_code == 200 and answered.json()["cards"]
        read = post(VIEW, from_fhir)
        assert read.status_code == 200 and read.json()["cards"]
        assert post(SIGN, order).status_code == 200
        assert post(VIEW, wrong_hook).status_code == 400
        expired = post(VIEW, with_prefetch, exp=int(time.time()) - 3600)
        assert expired.status_code == 401
        wrong_audience = post(VIEW, with_prefetch, aud="https://elsewhere.example/cds-services")
        assert wrong_audience.status_code == 401
        # A path may hold a patient id (a misconfigured client) or a profile link's token.
        unknown = requests.get(f"{server.base}/cds-services/{patient_id}/feedback", timeout=30)
        assert unknown.status_code == 401  # refused before routing: no id reaches a log
        link = answered.json()["cards"][0]["links"][0]["url"]
        token = link.rsplit("/", 1)[1]
        assert requests.get(link, timeout=30).status_code == 200
    output = server.text()

    lines = [line for line in output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, app's and gunicorn's, is JSON
    loggers = {record["logger"] for record in records}
    assert {"gunicorn.error", "cytokine_cds.access", "cds_service.api.auth"} <= loggers
    requests_logged = [r for r in records if r["logger"] == "cytokine_cds.access"]
    hook_lines = [r for r in requests_logged if r.get("hookInstance")]
    assert {r["hookInstance"] for r in hook_lines} >= {with_prefetch["hookInstance"]}
    assert any(r["cards"] == ["il6driven"] and r["status"] == 200 for r in hook_lines)
    assert any(r["status"] == 401 for r in requests_logged)

    assert patient_id not in output
    assert token not in output
    assert access_token not in output
    assert len(client.issued) == 6
    for token in client.issued:
        _header, payload, signature = token.split(".")
        assert token not in output
        assert payload not in output
        assert signature not in output


def test_requests_gunicorn_refuses_are_logged_without_what_the_client_sent(
    tmp_path: Path,
) -> None:
    """gunicorn's refusal lines quote the request line or header: a path may hold a patient id."""
    import socket

    # Lower case: gunicorn takes an upper-case token ("MRN-1234567890") for a method, and the
    # line that uses the marker as a method must be refused whatever digits the uuid gives.
    marker = f"mrn-{uuid.uuid4().hex[:10]}"
    refused = [
        f"GET /Patient/{marker} HTTP/1.1 junk\r\nHost: x\r\n\r\n",  # malformed request line
        f"GET /Patient/{marker} HTTP/9.9\r\nHost: x\r\n\r\n",
        f"{marker} /healthz HTTP/1.1\r\nHost: x\r\n\r\n",  # not a method
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-{marker}\r\n\r\n",  # header without a colon
    ]
    with served(tmp_path) as server:
        host, port = server.base.removeprefix("http://").split(":")
        for raw in refused:
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(raw.encode())
                answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
        assert requests.get(server.base + "/healthz", timeout=5).status_code == 200
        time.sleep(0.3)
        output = server.text()
    assert output.count("Invalid request from ip=") == len(refused)
    assert marker not in output
