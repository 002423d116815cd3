"""/metrics through a real gunicorn server with two workers (prometheus multiprocess mode).

Each scrape is answered by one worker; the counters must still be the totals of both, so the
test makes sure both workers answered hook calls (their pids are in the JSON request lines) and
that every scrape reports the same totals.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from cds_service.composition import build_runtime
from cds_service.demo import hook_request
from cds_service.settings import Settings
from tests.conftest import load_fixture
from tests.observability.served import Served, served
from tests.servers import free_port

SERVICE = "cytokine-storm-patient-view"


Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Scrape:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(scrape: Scrape, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def hook_pids(server: Served) -> set[int]:
    pids = set()
    for line in server.text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("endpoint") == "hooks.call_service":
                pids.add(record["pid"])
    return pids


def patient_view(**options: Any) -> dict[str, Any]:
    service = build_runtime(Settings(auth="off")).services[SERVICE]
    bundle = load_fixture("patients/lab-bench.json")
    return hook_request(service, bundle, now=datetime.now(UTC), **options)


def test_counters_are_summed_over_both_workers(tmp_path: Path, fhir_server: str) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"CYTOKINE_CDS_FHIR_ALLOW_LOOPBACK": "true", "TMPDIR": str(temp)}
    full = patient_view()
    from_server = patient_view(prefetch=False, fhir_server=fhir_server)
    unreachable = patient_view(prefetch=False, fhir_server=f"http://127.0.0.1:{free_port()}/fhir")
    url_path = f"/cds-services/{SERVICE}"

    with served(tmp_path, env, workers=2) as server:
        # The service made its own multiprocess folder for this start (under TMPDIR).
        folders = list(temp.glob("cytokine-cds-metrics-*"))
        assert len(folders) == 1

        def call(body: dict[str, Any]) -> requests.Response:
            # A new connection per call, so gunicorn's accept spreads calls over the workers.
            return requests.post(server.base + url_path, json=body, timeout=30)

        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while sent < 400:
                statuses = [r.status_code for r in pool.map(call, [full] * 40)]
                assert statuses == [200] * 40
                sent += 40
                if len(hook_pids(server)) == 2:
                    break
        assert len(hook_pids(server)) == 2, "both workers must have answered"
        # One call that reads the FHIR server, one whose FHIR server cannot be reached.
        read = call(from_server)
        assert read.status_code == 200
        failed = call(unreachable)
        assert failed.status_code in (200, 412)
        others = [r.json()["cards"] for r in (read, failed) if r.status_code == 200]
        requests.get(server.base + "/cds-services", timeout=10).raise_for_status()

        scrapes = []
        for _ in range(6):
            response = requests.get(server.base + "/metrics", timeout=10)
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            scrapes.append(samples(response.text))
        pid_count = len({line for line in hook_pids(server)})
    assert pid_count == 2
    assert not folders[0].exists(), "the multiprocess folder is removed when the server stops"

    answered = sent + len(others)
    with_cards = sent + sum(1 for cards in others if cards)
    il6_cards = sent + sum(
        1 for cards in others for c in cards if c["source"]["topic"]["code"] == "il6driven"
    )
    for scrape in scrapes:
        assert value(
            scrape, "cytokine_cds_http_requests_total",
            endpoint="hooks.call_service", service=SERVICE, method="POST", status="200",
        ) == answered  # fmt: skip
        assert value(
            scrape, "cytokine_cds_http_request_duration_seconds_count",
            endpoint="hooks.call_service", service=SERVICE, status="200",
        ) == answered  # fmt: skip
        assert (
            value(scrape, "cytokine_cds_cards_total", service=SERVICE, topic="il6driven")
            == il6_cards
        )
        assert value(scrape, "cytokine_cds_audit_writes_total") == with_cards
        assert value(scrape, "cytokine_cds_audit_write_failures_total") == 0
        assert value(
            scrape, "cytokine_cds_http_requests_total",
            endpoint="discovery.discovery", service="", method="GET", status="200",
        ) == 1  # fmt: skip
        assert value(scrape, "cytokine_cds_fhir_fetch_duration_seconds_count", outcome="ok") == 1
        assert value(scrape, "cytokine_cds_fhir_fetch_errors_total", kind="unreachable") >= 1
