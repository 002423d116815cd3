"""/readyz, /metrics (and its optional token), the request log line and the counters that are
incremented where things happen, through the Flask test client (one process: the in-memory
registry; tests/observability/test_metrics_served.py covers gunicorn's multiprocess mode)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service import create_app
from cds_service.observability.logs import ACCESS_LOGGER, logged_hook_instance
from cds_service.observability.metrics import metrics
from cds_service.serving import gunicorn_options
from cds_service.settings import Settings
from tests.conftest import hook_body, hook_call
from tests.servers import free_port


# A PostgreSQL URL on a loopback port where nothing listens: the store is down from the start.
def down_database() -> str:
    return f"postgresql://cds:secret@127.0.0.1:{free_port()}/cds"


def sample(name: str, **labels: str) -> float:
    return metrics().registry.get_sample_value(name, labels) or 0.0


def test_ready_when_rules_loaded_and_store_answers() -> None:
    client = create_app(Settings(auth="off")).test_client()
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready" and body["not_ready"] == []
    assert body["checks"]["store"]["ready"] is True
    assert body["checks"]["rules"]["detail"].startswith("rules ")


def test_not_ready_while_the_store_is_down_naming_it() -> None:
    client = create_app(Settings(auth="off", database_url=down_database())).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not ready"
    assert body["not_ready"] == ["store"]
    assert "unreachable" in body["checks"]["store"]["detail"]
    assert "secret" not in response.get_data(as_text=True)  # no credentials of the URL
    # Liveness is not readiness: the process itself is fine.
    assert client.get("/healthz").status_code == 200


def test_store_outage_can_be_tolerated_by_setting() -> None:
    settings = Settings(auth="off", database_url=down_database(), ready_requires_store=False)
    response = create_app(settings).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["store"]["ready"] is False


def test_metrics_open_by_default_in_prometheus_text_format() -> None:
    client = create_app(Settings(auth="off")).test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    text = response.get_data(as_text=True)
    assert "# TYPE cytokine_cds_http_requests_total counter" in text
    assert "# TYPE cytokine_cds_http_request_duration_seconds histogram" in text


def test_metrics_token_when_configured() -> None:
    token = "metrics-" + uuid.uuid4().hex
    client = create_app(Settings(auth="off", metrics_token=token)).test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "CYTOKINE_CDS_METRICS_TOKEN" in refused.get_data(as_text=True)
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200
    # The token guards /metrics only, and no CDS client JWT is asked for it.
    assert client.get("/healthz").status_code == 200


def test_metrics_token_must_not_be_trivially_short() -> None:
    with pytest.raises(ValueError, match="metrics_token"):
        Settings(auth="off", metrics_token="short")


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_hook_call_logs_one_line_and_counts_cards(caplog: pytest.LogCaptureFixture) -> None:
    client = create_app(Settings(auth="off")).test_client()
    service = "cytokine-storm-patient-view"
    labels = {"endpoint": "hooks.call_service", "service": service, "method": "POST"}
    before_ok = sample("cytokine_cds_http_requests_total", **labels, status="200")
    before_cards = sample("cytokine_cds_cards_total", service=service, topic="il6driven")
    before_writes = sample("cytokine_cds_audit_writes_total")
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)

    response = hook_call(client, "patient-view", "css-il6-covid")

    assert response.status_code == 200
    [record] = access_records(caplog)
    fields: dict[str, Any] = record.__dict__
    assert fields["method"] == "POST"
    assert fields["path"] == f"/cds-services/{service}"
    assert fields["status"] == 200
    assert fields["service"] == service
    assert fields["cards"] == ["il6driven"]
    assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] > 0
    assert uuid.UUID(fields["hookInstance"])
    assert sample("cytokine_cds_http_requests_total", **labels, status="200") == before_ok + 1
    assert sample("cytokine_cds_cards_total", service=service, topic="il6driven") == (
        before_cards + 1
    )
    assert sample("cytokine_cds_audit_writes_total") == before_writes + 1


@pytest.mark.parametrize("sent", ["MRN-00123456", "x" * 5000, "enc 42\nforged line"])
def test_a_hook_instance_that_is_no_uuid_is_logged_as_a_hash(
    caplog: pytest.LogCaptureFixture, sent: str
) -> None:
    """A client may put a record number in hookInstance: only a hash of it is logged, the same
    for every line of the call."""
    client = create_app(Settings(auth="off")).test_client()
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    path, body = hook_body(client, "patient-view", "css-il6-covid")
    body["hookInstance"] = sent
    assert client.post(path, json=body).status_code == 200
    [record] = access_records(caplog)
    logged = record.__dict__["hookInstance"]
    assert re.fullmatch(r"hmac:[0-9a-f]{12}", logged)
    assert logged != "hmac:" + hashlib.sha256(sent.encode()).hexdigest()[:12]  # keyed
    assert logged == logged_hook_instance(sent) and sent not in caplog.text
    assert logged_hook_instance("D1577C69-DFBE-44AD-BA6D-3E05E953B2EA").startswith("D1577C69")


def test_unknown_paths_are_logged_as_patterns(caplog: pytest.LogCaptureFixture) -> None:
    """A mistyped URL may carry anything (a patient id): only the route pattern is logged."""
    client = create_app(Settings(auth="off")).test_client()
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    assert client.post("/cds-services/Patient-12345", json={}).status_code == 404
    assert client.get("/Patient/12345?name=Doe").status_code == 404
    paths = [r.__dict__["path"] for r in access_records(caplog)]
    assert paths == ["/cds-services/<service_id>", "<unmatched>"]
    assert "12345" not in caplog.text
    # Unknown service ids do not become metric labels (the label set stays bounded).
    text = client.get("/metrics").get_data(as_text=True)
    assert "Patient-12345" not in text


def test_probe_lines_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    client = create_app(Settings(auth="off")).test_client()
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client.get("/healthz")
    client.get("/readyz")
    client.get("/metrics")
    assert access_records(caplog) == []


def test_store_failures_are_counted_where_they_happen() -> None:
    client = create_app(Settings(auth="off", database_url=down_database())).test_client()
    failures = sample("cytokine_cds_audit_write_failures_total")
    feedback_failures = sample("cytokine_cds_feedback_write_failures_total")

    assert hook_call(client, "patient-view", "css-il6-covid").status_code == 200
    feedback = {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-20T12:00:00Z",
            }
        ]
    }
    answer = client.post("/cds-services/cytokine-storm-patient-view/feedback", json=feedback)
    assert answer.status_code == 503

    assert sample("cytokine_cds_audit_write_failures_total") == failures + 1
    assert sample("cytokine_cds_feedback_write_failures_total") == feedback_failures + 1


def test_refused_jwts_are_counted_by_reason(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1"}
    issuer = "https://ehr.metrics-test.example"
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({"clients": [{"iss": issuer, "jwks": {"keys": [jwk]}}]}))
    settings = Settings(trusted_clients=clients, public_base_url="http://localhost")
    client = create_app(settings).test_client()
    missing = sample("cytokine_cds_auth_failures_total", reason="missing_token")
    expired = sample("cytokine_cds_auth_failures_total", reason="expired")

    assert client.get("/cds-services").status_code == 401
    now = int(time.time())
    claims = {"iss": issuer, "aud": "http://localhost/cds-services", "jti": "j1"}
    old = jwt.encode(
        {**claims, "iat": now - 7200, "exp": now - 3600}, key, algorithm="ES384",
        headers={"kid": "k1"},
    )  # fmt: skip
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {old}"}).status_code == (
        401
    )

    assert sample("cytokine_cds_auth_failures_total", reason="missing_token") == missing + 1
    assert sample("cytokine_cds_auth_failures_total", reason="expired") == expired + 1
    refused = sample(
        "cytokine_cds_http_requests_total",
        endpoint="discovery.discovery", service="", method="GET", status="401",
    )  # fmt: skip
    assert refused >= 2  # refused calls are timed and counted too


def test_sync_workers_get_one_thread() -> None:
    options = gunicorn_options(Settings(auth="off", worker_class="sync", threads=8, workers=3))
    assert options["worker_class"] == "sync"
    assert options["threads"] == 1  # gunicorn would silently switch to gthread otherwise
    assert options["workers"] == 3
    threaded = gunicorn_options(Settings(auth="off", worker_class="gthread", threads=8))
    assert threaded["worker_class"] == "gthread" and threaded["threads"] == 8
    assert Settings(auth="off").worker_class == "sync"  # the measured default (README)


def test_gunicorn_does_not_build_the_access_line_nobody_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The JSON request line is the access log. gunicorn builds its own access line whenever a
    log is configured (serve passes a logging config); the service's logger class does not."""
    import os

    from gunicorn import glogging
    from gunicorn.config import Config

    built: list[object] = []
    monkeypatch.setattr(glogging.Logger, "atoms", lambda self, *args: built.append(args) or {})
    config = Config()
    config.set("accesslog", os.devnull)  # an access log configured: gunicorn's logger builds it
    glogging.Logger(config).access(None, None, {}, None)
    assert len(built) == 1  # gunicorn's own logger builds it, so the check below can fail
    logger_class = gunicorn_options(Settings(auth="off"))["logger_class"]
    logger_class(config).access(None, None, {}, None)
    assert len(built) == 1


def test_folders_of_killed_servers_are_removed_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL leaves a server no chance to remove its folder: the next start does."""
    import os
    import subprocess
    import tempfile

    from cds_service.observability import metrics as metrics_module

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    exited = subprocess.Popen(["true"])
    exited.wait()  # its pid now belongs to no process
    abandoned = tmp_path / f"cytokine-cds-metrics-{exited.pid}-x1"
    running = tmp_path / f"cytokine-cds-metrics-{os.getpid()}-x2"
    unrelated = tmp_path / "cytokine-cds-metrics-notapid"
    for folder in (abandoned, running, unrelated):
        folder.mkdir()

    folder = metrics_module.start_multiprocess_dir()
    try:
        assert folder.parent == tmp_path and folder.name.startswith(
            f"cytokine-cds-metrics-{os.getpid()}-"
        )
        assert os.environ[metrics_module.MULTIPROC_ENV] == str(folder)
        assert not abandoned.exists()
        assert running.exists() and unrelated.exists()
    finally:
        metrics_module.remove_multiprocess_dir(folder)
    assert not folder.exists()
    assert metrics_module.MULTIPROC_ENV not in os.environ


def test_a_method_the_endpoint_does_not_allow_is_counted_against_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """GET on a service (it takes POST) is a 405 of that endpoint and service, not "unmatched";
    a path that matches nothing stays unmatched."""
    client = create_app(Settings(auth="off")).test_client()
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    service = "cytokine-storm-patient-view"
    labels = {"endpoint": "hooks.call_service", "service": service, "method": "GET"}
    before = sample("cytokine_cds_http_requests_total", **labels, status="405")
    assert client.get(f"/cds-services/{service}").status_code == 405
    assert sample("cytokine_cds_http_requests_total", **labels, status="405") == before + 1
    (record,) = access_records(caplog)
    assert record.__dict__["endpoint"] == "hooks.call_service"
    assert record.__dict__["path"] == f"/cds-services/{service}"
    assert record.__dict__["service"] == service
    caplog.clear()
    assert client.delete("/no/such/route/Patient-12345").status_code == 404
    (record,) = access_records(caplog)
    assert record.__dict__["path"] == "<unmatched>"
    assert record.__dict__["endpoint"] == "unmatched"
