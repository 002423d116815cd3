"""A round trip through `cytokine-cds serve`: a real gunicorn process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import FIXTURES, load_fixture
from tests.servers import BIN, cds_service, cytokine_cds, free_port, running


def test_served_by_gunicorn_end_to_end() -> None:
    with cds_service() as base:
        discovery = requests.get(f"{base}/cds-services", timeout=5)
        assert discovery.status_code == 200
        assert discovery.headers["Server"].startswith("gunicorn")
        services = {s["id"]: s for s in discovery.json()["services"]}
        assert len(services) == 3

        answer = requests.post(
            f"{base}/cds-services/cytokine-storm-patient-view",
            json=load_fixture("hooks/patient-view.json"),
            timeout=5,
        )
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/json"
        assert "cards" in answer.json()

        bad = requests.post(
            f"{base}/cds-services/cytokine-storm-patient-view",
            data="{",
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert bad.status_code == 400
        assert bad.json()["resourceType"] == "OperationOutcome"


def test_invalid_setting_stops_start_up_with_a_message() -> None:
    result = cytokine_cds("serve", env={"CYTOKINE_CDS_PORT": "not-a-port", "PATH": ""}, timeout=30)
    assert result.returncode != 0
    assert "CYTOKINE_CDS_PORT" in result.stderr


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_the_master_forks_its_workers_without_other_threads(tmp_path: Path) -> None:
    """Start-up migrates the SQLite store in the master, which starts the WAL checkpoint thread
    there; it is stopped before gunicorn forks. A fork copies only the forking thread, so a
    worker forked while that thread held a lock could hang on its first write."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "CYTOKINE_CDS_WORKERS": "2",
        "CYTOKINE_CDS_AUTH": "off",
        "CYTOKINE_CDS_DATA_DIR": str(tmp_path),
        "CYTOKINE_CDS_PUBLIC_BASE_URL": base,
    }
    command = [str(BIN / "cytokine-cds"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    # The README's demo request: the fixture's dates moved to now, so the answer has cards.
    demo = cytokine_cds("demo-request", str(FIXTURES / "patients" / "css-il6-covid.json"))
    with running(command, f"{base}/healthz", env=env) as master:
        answer = requests.post(
            f"{base}/cds-services/cytokine-storm-patient-view",
            data=demo.stdout,
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert answer.status_code == 200 and answer.json()["cards"]  # an audited answer
        # /healthz answers once one worker is up: wait for the second before counting.
        deadline = time.monotonic() + 20
        while len(workers := _children(master.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2
        assert _threads(master.pid) == 1
        # The worker that wrote the audit row checkpoints in a thread of its own.
        assert sorted(_threads(pid) for pid in workers) == [1, 2]
