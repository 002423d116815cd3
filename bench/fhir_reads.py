"""In-process cost of the no-prefetch reads: `gather_record` for the benchmark's no-prefetch
patient-view request, with the Observation searches merged (the default) and, side by side in the
same run, one search per prefetch key (CYTOKINE_CDS_FHIR_MERGE_CODE_SEARCHES=false).

Starts a FHIR R4 server (sekmet, from `make test`'s .fhir-venv) on a free 127.0.0.1 port, loads
the fixtures with their dates moved to now (as bench/http_load.py does), then calls
`gather_record` sequentially, alternating the two configurations call by call. Prints, per
configuration: wall time (median, p95), this process's CPU time per call, the FHIR server's CPU
time per call (from /proc) and the FHIR requests per call. No load generator, no HTTP front: a
small, quiet-machine-friendly measurement.

    .venv/bin/python bench/fhir_reads.py [--calls 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.http_load import (  # noqa: E402
    SERVICES,
    build_requests,
    process,
    sekmet_binary,
    shifted_fixtures,
)
from cds_service.composition import build_runtime  # noqa: E402
from cds_service.gathering import gather_record  # noqa: E402
from cds_service.hooks.request import HookRequest  # noqa: E402
from cds_service.runtime import Runtime  # noqa: E402
from cds_service.settings import Settings  # noqa: E402
from tests.servers import free_port  # noqa: E402

CONFIGS = {"merged": True, "one per key": False}
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / TICKS


def server_cpu(pid: int) -> float:
    """CPU seconds of the FHIR server: the process we started and its children (a reloader or
    worker processes, if its launcher forks)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return process_cpu(pid) + sum(server_cpu(int(child)) for child in children)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per configuration")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cytokine-fhir-reads-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}/fhir"
        env = {**os.environ, "SEKMET_BASE_URL": base, "SEKMET_PORT": str(port)}
        (workdir / "sekmet").mkdir()
        command = [str(sekmet_binary()), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with process("sekmet", command, f"{base}/metadata", env, workdir / "sekmet") as (_, pid):
            cds = str(Path(sys.executable).parent / "cytokine-cds")
            subprocess.run(
                [cds, "load-fixtures", "--fhir-server", base, *map(str, shifted_fixtures(workdir))],
                check=True,
                capture_output=True,
                env={**os.environ, "CYTOKINE_CDS_DATA_DIR": str(workdir / "data")},
            )
            run(base, pid, args.calls, workdir)


def run(base: str, sekmet_pid: int, calls: int, workdir: Path) -> None:
    body = build_requests(base)["bare"]
    request = HookRequest.model_validate(body)
    runtimes: dict[str, Runtime] = {
        name: build_runtime(
            Settings(
                auth="off",
                data_dir=workdir / "data",
                fhir_allow_loopback=True,
                fhir_merge_code_searches=merge,
            )
        )
        for name, merge in CONFIGS.items()
    }
    service_id = SERVICES["patient-view"]
    wall: dict[str, list[float]] = {name: [] for name in CONFIGS}
    cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    fhir_cpu = dict.fromkeys(CONFIGS, 0.0)
    resources: dict[str, int] = {}
    for number in range(calls + 20):  # the first 20 warm up connections and caches
        for name, runtime in runtimes.items():
            service = runtime.services[service_id]
            server_before = server_cpu(sekmet_pid)
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            record = gather_record(runtime.fhir, service, request)
            spent_wall, spent_cpu = (
                time.perf_counter() - wall_before,
                time.process_time() - cpu_before,
            )
            # The server's last request has been answered; its CPU tick may land a little later.
            spent_server = server_cpu(sekmet_pid) - server_before
            assert record.gaps == (), record.gaps
            resources[name] = len(record.resources)
            if number >= 20:
                wall[name].append(spent_wall * 1000)
                cpu[name].append(spent_cpu * 1000)
                fhir_cpu[name] += spent_server
    for runtime in runtimes.values():
        runtime.fhir.close()
    print(f"gather_record, no-prefetch patient-view ({calls} calls each, sequential, alternating)")
    print(f"{'searches':<12} {'wall p50':>9} {'wall p95':>9} {'CPU/call':>9} {'FHIR CPU/call':>14}"
          f" {'resources':>10}")  # fmt: skip
    for name in CONFIGS:
        p50, p95 = statistics.median(wall[name]), percentile(wall[name], 0.95)
        print(
            f"{name:<12} {p50:>7.2f}ms {p95:>7.2f}ms"
            f" {statistics.mean(cpu[name]):>7.2f}ms {fhir_cpu[name] / calls * 1000:>12.2f}ms"
            f" {resources[name]:>10}"
        )


if __name__ == "__main__":
    main()
