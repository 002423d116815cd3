"""A real FHIR R4 server for the tests: sekmet-fhir on 127.0.0.1, one per test session.

The binary comes from CYTOKINE_TEST_SEKMET (set by `make test`), else from the Makefile's
.fhir-venv, else it is installed once into a venv under the pytest cache (the version pinned in the
Makefile). The server runs in a temporary folder (its SQLite file lives there), is loaded with
fixtures/patients/*.json through the same code as `cytokine-cds load-fixtures`, and is stopped
when the session ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.fhir.fixture_upload import upload
from tests.servers import free_port, stop, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
PATIENTS = ROOT / "fixtures" / "patients"
BINARY_ENV = "CYTOKINE_TEST_SEKMET"


def sekmet_version() -> str:
    match = re.search(r"^SEKMET_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    if not match:
        pytest.fail("SEKMET_VERSION not found in the Makefile")
    return match.group(1)


def sekmet_binary(cache_dir: Path) -> Path:
    configured = os.environ.get(BINARY_ENV)
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"{BINARY_ENV}={configured} is not an executable; run `make test`")
        return Path(configured)
    made = ROOT / ".fhir-venv" / "bin" / "sekmet"
    if os.access(made, os.X_OK):
        return made
    version = sekmet_version()
    venv = cache_dir / f"sekmet-{version}"
    binary = venv / "bin" / "sekmet"
    if not os.access(binary, os.X_OK):
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
            subprocess.run(
                [*pip, f"sekmet-fhir=={version}"],
                check=True,
                timeout=600,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.fail(
                f"could not install the FHIR test server sekmet-fhir=={version} ({exc}); "
                "run `make test`, which installs it and sets " + BINARY_ENV
            )
    return binary


@contextmanager
def sekmet(binary: Path, workdir: Path) -> Iterator[str]:
    """sekmet serving from `workdir` on a free loopback port; yields its FHIR base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = {**os.environ, "SEKMET_BASE_URL": base, "SEKMET_PORT": str(port)}
    log_path = workdir / "sekmet.log"
    # Output goes to a file: a pipe nobody reads fills up and blocks the server.
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(binary.absolute()), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_until_up(f"{base}/metadata", process, timeout=60)
        except (RuntimeError, TimeoutError) as exc:
            output = log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"the FHIR test server did not start: {exc}\n{output}")
        yield base
    finally:
        stop(process)


@pytest.fixture(scope="session")
def fhir_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of a running sekmet loaded with every fixture patient."""
    binary = sekmet_binary(Path(request.config.cache.mkdir("fhir-test-server")))
    with sekmet(binary, tmp_path_factory.mktemp("sekmet")) as base:
        for _ in upload(base, [PATIENTS]):
            pass
        yield base


def fixture_patients() -> list[Path]:
    return sorted(PATIENTS.glob("*.json"))


def fixture_patient_ids() -> list[str]:
    """The id of the Patient in each fixture Bundle, one per file."""
    ids = []
    for path in fixture_patients():
        bundle = json.loads(path.read_text(encoding="utf-8"))
        ids += [
            entry["resource"]["id"]
            for entry in bundle["entry"]
            if entry["resource"]["resourceType"] == "Patient"
        ]
    return ids


def client_prefetch(base: str, templates: Mapping[str, str], patient_id: str) -> dict[str, Any]:
    """The prefetch a CDS client that honours every template would send, read from `base`.

    Filled by plain substitution (independent of the service's template code); a read that finds
    nothing is null, a search is its searchset Bundle."""
    prefetch: dict[str, Any] = {}
    for key, template in templates.items():
        query = template.replace("{{context.patientId}}", patient_id)
        response = requests.get(
            f"{base}/{query}", headers={"Accept": "application/fhir+json"}, timeout=10
        )
        if response.status_code == 404:
            prefetch[key] = None
            continue
        response.raise_for_status()
        prefetch[key] = response.json()
    return prefetch
