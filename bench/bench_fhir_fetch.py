"""Latency of a hook call that reads the FHIR server, against one that brings full prefetch.

Starts a real FHIR R4 server (sekmet, loaded with fixtures/patients) and `cytokine-cds serve`
(gunicorn) on 127.0.0.1, then sends the same patient-view call N times sequentially in each form
and prints median / p95 / p99 latency as the client sees it. Everything it starts is stopped.

    make test            # once: installs the FHIR test server into .fhir-venv
    .venv/bin/python bench/bench_fhir_fetch.py [--calls 300] [--patient fhir-access-demo]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from cds_service.composition import build_runtime  # noqa: E402
from cds_service.fhir.fixture_upload import upload  # noqa: E402
from cds_service.settings import Settings  # noqa: E402
from tests.fhir_server import client_prefetch, sekmet  # noqa: E402
from tests.servers import cds_service  # noqa: E402

SERVICE_ID = "cytokine-storm-patient-view"


def sekmet_binary() -> Path:
    for candidate in (os.environ.get("CYTOKINE_TEST_SEKMET"), ROOT / ".fhir-venv/bin/sekmet"):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise SystemExit("no FHIR test server: run `make test` once (it installs .fhir-venv)")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(session: requests.Session, url: str, body: dict[str, Any], calls: int) -> list[float]:
    for _ in range(20):  # warm-up: connections, worker imports, sekmet caches
        session.post(url, json=body, timeout=10).raise_for_status()
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        response = session.post(url, json=body, timeout=10)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return latencies


def report(label: str, latencies: list[float]) -> None:
    print(
        f"{label:<34} median {statistics.median(latencies):6.1f} ms   "
        f"p95 {percentile(latencies, 0.95):6.1f} ms   p99 {percentile(latencies, 0.99):6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--patient", default="css-il1-mals")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    templates = build_runtime(Settings(auth="off")).services[SERVICE_ID].prefetch
    hook = json.loads((ROOT / "fixtures/hooks/patient-view.json").read_text())
    hook["context"]["patientId"] = args.patient

    with tempfile.TemporaryDirectory() as workdir, sekmet(sekmet_binary(), Path(workdir)) as fhir:
        for _ in upload(fhir, [ROOT / "fixtures/patients"]):
            pass
        full = copy.deepcopy(hook) | {"fhirServer": fhir}
        full["prefetch"] = client_prefetch(fhir, templates, args.patient)
        bare = {k: v for k, v in full.items() if k != "prefetch"}
        resources = sum(len(v.get("entry", [])) if v else 0 for v in full["prefetch"].values())
        env = {
            "CYTOKINE_CDS_FHIR_ALLOWLIST": fhir,
            "CYTOKINE_CDS_LOG_LEVEL": "WARNING",
        }
        with cds_service(env=env, workers=args.workers) as base, requests.Session() as session:
            url = f"{base}/cds-services/{SERVICE_ID}"
            print(
                f"{args.calls} sequential patient-view calls, patient {args.patient} "
                f"({resources} Observations in 2 searches + 1 Patient read), "
                f"{args.workers} gunicorn workers, sekmet on loopback"
            )
            report("full prefetch", measure(session, url, full, args.calls))
            report("no prefetch (3 FHIR reads)", measure(session, url, bare, args.calls))
            direct = measure_direct(session, fhir, templates, args.patient, args.calls)
            report("for reference: one FHIR search", direct)


def measure_direct(
    session: requests.Session, fhir: str, templates: Any, patient: str, calls: int
) -> list[float]:
    query = templates["cytokines"].replace("{{context.patientId}}", patient)
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        session.get(f"{fhir}/{query}", timeout=10).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


if __name__ == "__main__":
    main()
