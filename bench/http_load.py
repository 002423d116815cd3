"""HTTP load benchmark: the service under its production server, driven by wrk, next to a baseline.

Starts on 127.0.0.1, each in its own process:
- `cytokine-cds serve` (gunicorn, the settings of the environment: CYTOKINE_CDS_WORKERS, _THREADS,
  ...), with CDS client authentication OFF, so the numbers are about the service's own work;
- the same with authentication ON (a trusted client with a static ES384 key), for one case;
- bench/baseline_app.py: a minimal Flask endpoint under the same gunicorn settings that parses the
  same body and returns a fixed card (the yardstick for the "ratio" column);
- a FHIR R4 server (sekmet, from `make test`'s .fhir-venv) loaded with the fixture patients by
  `cytokine-cds load-fixtures`, for the no-prefetch case.
Then runs wrk (a separate process; `apt-get install -y wrk`) for a fixed time per case and
concurrency, prints requests/s, p50/p95/p99 latency and errors, and writes everything to
bench/results/http-load-<time>.json. Everything it starts is stopped at the end.

Cases: discovery; patient-view with full prefetch (fixtures/patients/lab-bench.json: 60
Observations, a multiplex panel with components and routine labs); order-sign with a mismatched
draft order (anakinra for an IL-6 pattern); patient-view without prefetch (the service reads the
FHIR server); and patient-view with full prefetch plus an ES384 JWT, a fresh token per request
(signed beforehand: signing is the client's cost).

    make test                         # once: installs the FHIR test server into .fhir-venv
    .venv/bin/python bench/http_load.py [--duration 10] [--concurrency 1,8,32] [--cases ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds_service.composition import build_runtime  # noqa: E402
from cds_service.demo import FIXTURE_TIME, hook_request, shift_dates  # noqa: E402
from cds_service.settings import Settings  # noqa: E402
from tests.servers import free_port, stop, wait_until_up  # noqa: E402

BIN = Path(sys.executable).parent
LUA = ROOT / "bench" / "wrk_report.lua"
RESULTS = ROOT / "bench" / "results"
PATIENT = "lab-bench"
MISMATCHED_ORDER = "anakinra"  # lab-bench shows an IL-6 pattern: anakinra does not fit it
ISSUER = "https://bench-ehr.example"
SERVICES = {
    "patient-view": "cytokine-storm-patient-view",
    "order-sign": "cytokine-storm-order-sign",
}


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    method: str
    path: str
    body: bytes | None = None
    target: str = "service"  # which server: "service" or "auth" (authentication on)
    tokens: bool = False  # a fresh JWT per request
    expect: str | None = None  # a card topic code the answer must carry (checked before the run)


@dataclass
class Servers:
    service: str = ""
    auth: str = ""
    baseline: str = ""
    fhir: str = ""
    logs: dict[str, Path] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)  # server name -> its (master) process


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "wrk is not installed. It is the load generator of this benchmark (a separate, "
            "efficient C process). Install it with `apt-get install -y wrk` (Debian/Ubuntu) or "
            "`brew install wrk` (macOS), then run this script again."
        )
    return found


def sekmet_binary() -> Path:
    for candidate in (os.environ.get("CYTOKINE_TEST_SEKMET"), ROOT / ".fhir-venv/bin/sekmet"):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise SystemExit("no FHIR test server: run `make test` once (it installs .fhir-venv)")


def load_json(relative: str) -> Any:
    return json.loads((ROOT / "fixtures" / relative).read_text(encoding="utf-8"))


def build_cases(fhir_base: str) -> list[Case]:
    runtime = build_runtime(Settings(auth="off"))
    now = datetime.now(UTC)
    patient = load_json(f"patients/{PATIENT}.json")
    view = runtime.services[SERVICES["patient-view"]]
    sign = runtime.services[SERVICES["order-sign"]]
    full = hook_request(view, patient, now=now)
    mismatch = hook_request(
        sign, patient, now=now, draft_orders=load_json(f"orders/{MISMATCHED_ORDER}.json")
    )
    bare = hook_request(view, patient, now=now, prefetch=False, fhir_server=fhir_base)
    observations = sum(len(v.get("entry", [])) for v in full["prefetch"].values() if v)
    view_path = f"/cds-services/{view.id}"

    def body(data: dict[str, Any]) -> bytes:
        return json.dumps(data).encode()

    return [
        Case("discovery", "discovery (GET /cds-services)", "GET", "/cds-services"),
        Case(
            "patient-view-prefetch",
            f"patient-view, full prefetch ({observations} Observations)",
            "POST",
            view_path,
            body(full),
            expect="il6-driven",
        ),
        Case(
            "order-sign-mismatch",
            f"order-sign, mismatched draft order ({MISMATCHED_ORDER})",
            "POST",
            f"/cds-services/{sign.id}",
            body(mismatch),
            expect="order-mismatch",
        ),
        Case(
            "patient-view-fhir",
            "patient-view, no prefetch (reads the local FHIR server)",
            "POST",
            view_path,
            body(bare),
            expect="il6-driven",
        ),
        Case(
            "patient-view-prefetch-jwt",
            "patient-view, full prefetch, ES384 JWT per request (auth on)",
            "POST",
            view_path,
            body(full),
            target="auth",
            tokens=True,
            expect="il6-driven",
        ),
    ]


@dataclass
class Signer:
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )

    def jwks(self) -> dict[str, Any]:
        public = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": "bench", "use": "sig", "alg": "ES384"}]}

    def tokens(self, audience: str, count: int) -> list[str]:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 600}
        return [
            jwt.encode(
                {**claims, "jti": str(uuid.uuid4())},
                self.key,
                algorithm="ES384",
                headers={"kid": "bench", "typ": "JWT"},
            )
            for _ in range(count)
        ]


def shifted_fixtures(workdir: Path) -> Path:
    """The fixture patients with their dates moved to now (as hook_request moves prefetch), so
    the FHIR server holds results as fresh as the prefetch cases send."""
    folder = workdir / "patients"
    folder.mkdir()
    delta = datetime.now(UTC) - FIXTURE_TIME
    for path in sorted((ROOT / "fixtures/patients").glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        (folder / path.name).write_text(json.dumps(shift_dates(bundle, delta)), encoding="utf-8")
    return folder


@contextmanager
def process(
    name: str, command: list[str], health: str, env: dict[str, str], logdir: Path
) -> Iterator[tuple[Path, int]]:
    """A server process with its output in a file (a pipe nobody reads would block it)."""
    log_path = logdir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=logdir)
    try:
        try:
            wait_until_up(health, proc, timeout=60)
        except (RuntimeError, TimeoutError) as exc:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{name} did not start: {exc}\n{tail}") from None
        yield log_path, proc.pid
    finally:
        stop(proc)


def service_env(workdir: Path, name: str, **extra: str) -> dict[str, str]:
    data = workdir / f"data-{name}"
    return {
        **os.environ,
        "CYTOKINE_CDS_DATA_DIR": str(data),
        "CYTOKINE_CDS_FHIR_ALLOW_LOOPBACK": "true",
        **extra,
    }


@contextmanager
def start_servers(workdir: Path, signer: Signer) -> Iterator[Servers]:
    servers = Servers()
    cds = str(BIN / "cytokine-cds")
    with ExitStack() as stack:
        # The FHIR server, loaded the way a user would: `cytokine-cds load-fixtures`.
        port = free_port()
        servers.fhir = f"http://127.0.0.1:{port}/fhir"
        fhir_env = {**os.environ, "SEKMET_BASE_URL": servers.fhir, "SEKMET_PORT": str(port)}
        sekmet_dir = workdir / "sekmet"
        sekmet_dir.mkdir()
        servers.logs["sekmet"], servers.pids["sekmet"] = stack.enter_context(
            process(
                "sekmet",
                [str(sekmet_binary()), "serve", "--host", "127.0.0.1", "--port", str(port)],
                f"{servers.fhir}/metadata",
                fhir_env,
                sekmet_dir,
            )
        )
        loaded = subprocess.run(
            [cds, "load-fixtures", "--fhir-server", servers.fhir, str(shifted_fixtures(workdir))],
            capture_output=True,
            text=True,
            check=False,
        )
        if loaded.returncode != 0:
            raise SystemExit(f"load-fixtures failed:\n{loaded.stderr}")

        for name, extra in (
            ("service", {"CYTOKINE_CDS_AUTH": "off"}),
            ("auth", {"CYTOKINE_CDS_AUTH": "on"}),
            ("baseline", {"CYTOKINE_CDS_AUTH": "off"}),
        ):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = service_env(workdir, name, **extra)
            if name == "auth":
                clients = workdir / "trusted-clients.json"
                clients.write_text(
                    json.dumps({"clients": [{"iss": ISSUER, "jwks": signer.jwks()}]}),
                    encoding="utf-8",
                )
                env["CYTOKINE_CDS_TRUSTED_CLIENTS"] = str(clients)
            if name == "baseline":
                command = [sys.executable, str(ROOT / "bench/baseline_app.py"), "--port", str(port)]
            else:
                command = [cds, "serve", "--host", "127.0.0.1", "--port", str(port)]
            servers.logs[name], servers.pids[name] = stack.enter_context(
                process(name, command, f"{base}/healthz", env, workdir)
            )
            setattr(servers, name, base)
        yield servers


class OtherLoad:
    """CPU used on this machine by processes other than this benchmark's (Linux /proc).

    Two cores are easily shared with a test suite or a build: a run during which other
    processes used the CPU is flagged, so its numbers are not mistaken for the service's."""

    def __init__(self) -> None:
        self.available = Path("/proc/stat").exists()
        self._start = self._sample() if self.available else (0.0, 0.0)

    @staticmethod
    def _sample() -> tuple[float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        tick = os.sysconf("SC_CLK_TCK")
        ours = sum(_process_ticks(pid) for pid in _descendants(os.getpid())) / tick
        mine, waited = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
        ours += mine.user + mine.system + waited.ru_utime + waited.ru_stime
        return busy / tick, ours

    def percent(self, seconds: float) -> float | None:
        """Share of all cores the other processes used since this object was made."""
        if not self.available:
            return None
        busy, ours = self._sample()
        other = (busy - self._start[0]) - (ours - self._start[1])
        return max(0.0, 100 * other / (seconds * (os.cpu_count() or 1)))


def wait_for_quiet(limit: float) -> None:
    """Wait (up to `limit` seconds) until other processes leave the cores alone for a second."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        load = OtherLoad()
        time.sleep(1.0)
        share = load.percent(1.0)
        if share is None or share < BUSY_MACHINE / 2:
            return
        print(f"  (waiting: other processes use {share:.0f}% of the CPU)", flush=True)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, _, rest = stat.read_text().partition(" (")
            ppid = int(rest.rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _process_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def check_case(case: Case, base: str, headers: dict[str, str]) -> None:
    """One request before the run: the case must answer 200 with the expected card."""
    response = requests.request(
        case.method,
        base + case.path,
        data=case.body,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )
    if response.status_code != 200:
        raise SystemExit(f"{case.name}: HTTP {response.status_code}: {response.text[:500]}")
    if case.expect:
        topics = [c["source"].get("topic", {}).get("code") for c in response.json()["cards"]]
        if case.expect not in topics:
            raise SystemExit(f"{case.name}: expected a {case.expect} card, got {topics}")


def worker_share(log: Path, offset: int) -> dict[str, float]:
    """Share of the requests each gunicorn worker answered (from the JSON request lines): an
    uneven share means connections pile up on one worker while another core idles."""
    counts: dict[str, int] = {}
    with log.open("rb") as lines:
        lines.seek(offset)
        for line in lines:
            if b'"cytokine_cds.access"' in line:
                pid = str(json.loads(line).get("pid"))
                counts[pid] = counts.get(pid, 0) + 1
    total = sum(counts.values()) or 1
    return {pid: round(count / total, 3) for pid, count in sorted(counts.items())}


def server_cpu_seconds(pid: int) -> float:
    """CPU time used so far by a server: its process and all its children (gunicorn workers)."""
    ticks = sum(_process_ticks(p) for p in (pid, *_descendants(pid)))
    return ticks / os.sysconf("SC_CLK_TCK")


def run_wrk(
    url: str,
    case: Case,
    concurrency: int,
    duration: int,
    workdir: Path,
    tokens: list[str] | None = None,
    server_pid: int | None = None,
) -> dict[str, Any]:
    env = {**os.environ, "BENCH_METHOD": case.method}
    if case.body is not None:
        body_file = workdir / f"{case.name}.json"
        body_file.write_bytes(case.body)
        env["BENCH_BODY_FILE"] = str(body_file)
    if tokens is not None:
        tokens_file = workdir / "tokens.txt"
        tokens_file.write_text("\n".join(tokens) + "\n", encoding="ascii")
        env["BENCH_TOKENS_FILE"] = str(tokens_file)
    # One wrk thread: it drives 32 connections easily and leaves the cores to the server (the
    # token list is per thread, so it must be one thread anyway).
    command = [
        wrk_binary(), "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s",
        "-s", str(LUA), url,
    ]  # fmt: skip
    wait_for_quiet(QUIET_WAIT)
    load = OtherLoad()
    cpu_before = server_cpu_seconds(server_pid) if server_pid else 0.0
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    other = load.percent(duration)
    cpu = server_cpu_seconds(server_pid) - cpu_before if server_pid else None
    match = re.search(r"^BENCH_JSON (.*)$", result.stdout, re.M)
    if result.returncode != 0 or match is None:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    data: dict[str, Any] = json.loads(match.group(1))
    data["rps"] = data["requests"] / data["duration_s"]
    data["error_count"] = sum(data["errors"].values())
    data["other_cpu_percent"] = other
    # Server CPU per answered request: barely moved by other load on the machine, unlike req/s.
    data["server_cpu_ms_per_request"] = (
        1000 * cpu / data["requests"] if cpu is not None and data["requests"] else None
    )
    return data


def measure(
    case: Case,
    servers: Servers,
    signer: Signer,
    levels: list[int],
    duration: int,
    workdir: Path,
) -> list[dict[str, Any]]:
    base = getattr(servers, case.target)
    url = base + case.path
    rows = []
    for concurrency in levels:
        tokens = None
        if case.tokens:
            # Enough for far more than the service can answer in `duration` (401s if not).
            tokens = signer.tokens(url, int(duration * 2500) + 2000)
            check_case(case, base, {"Authorization": f"Bearer {tokens.pop()}"})
        else:
            check_case(case, base, {})
            run_wrk(url, case, concurrency, min(2, duration), workdir)  # warm-up
        log = servers.logs[case.target]
        offset = log.stat().st_size
        result = run_wrk(
            url, case, concurrency, duration, workdir, tokens, servers.pids[case.target]
        )
        result["worker_share"] = worker_share(log, offset)
        run_wrk(servers.baseline + case.path, case, concurrency, min(2, duration), workdir)
        baseline = run_wrk(
            servers.baseline + case.path, case, concurrency, duration, workdir,
            server_pid=servers.pids["baseline"],
        )  # fmt: skip
        rows.append(
            {
                "case": case.name,
                "title": case.title,
                "concurrency": concurrency,
                "result": result,
                "baseline": baseline,
                "ratio": result["rps"] / baseline["rps"] if baseline["rps"] else None,
            }
        )
        print_row(rows[-1])
    return rows


HEADER = (
    f"{'case':<27} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
    f"{'errors':>6} {'base req/s':>10} {'ratio':>6} {'cpu ms':>7} {'base':>5} "
    f"{'workers':>9}  other CPU"
)
BUSY_MACHINE = 10.0  # % of all cores used by other processes that flags a run
QUIET_WAIT = 0.0  # seconds to wait for a quiet machine before each run (--wait-quiet)


def print_row(row: dict[str, Any]) -> None:
    result, latency = row["result"], row["result"]["latency_ms"]
    ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
    others = [r["other_cpu_percent"] for r in (result, row["baseline"])]
    other = "-" if None in others else f"{max(others):.0f}%"
    if None not in others and max(others) > BUSY_MACHINE:
        other += " (busy machine: numbers unreliable)"
    print(
        f"{row['case']:<27} {row['concurrency']:>3} {result['rps']:>8.0f} {latency['50']:>8.2f} "
        f"{latency['95']:>8.2f} {latency['99']:>8.2f} {result['error_count']:>6} "
        f"{row['baseline']['rps']:>10.0f} {ratio:>6} {_ms(result):>7} {_ms(row['baseline']):>5} "
        f"{_shares(result):>9}  {other}",
        flush=True,
    )


def _shares(result: dict[str, Any]) -> str:
    shares = sorted(result.get("worker_share", {}).values(), reverse=True)
    return "/".join(f"{100 * share:.0f}" for share in shares) or "-"


def _ms(result: dict[str, Any]) -> str:
    value = result.get("server_cpu_ms_per_request")
    return "-" if value is None else f"{value:.2f}"


def machine() -> dict[str, Any]:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.*)$", cpuinfo.read_text(), re.M)
        cpu = found.group(1) if found else ""
    settings = Settings(auth="off")
    wrk_version = subprocess.run(
        [wrk_binary(), "-v"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk_version[0] if wrk_version else "",
        "worker_class": settings.worker_class,
        "workers": settings.workers,
        "threads": settings.threads if settings.worker_class == "gthread" else 1,
        "keepalive": settings.keepalive,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--concurrency", default="1,8,32", help="connections, comma-separated")
    parser.add_argument("--cases", help="case names, comma-separated (default: all)")
    parser.add_argument("--output", type=Path, help="JSON file (default: bench/results/...)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="before each run, wait up to this many seconds for other processes to go idle",
    )
    args = parser.parse_args()
    global QUIET_WAIT
    QUIET_WAIT = args.wait_quiet
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every server started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    wrk_binary()
    levels = [int(level) for level in args.concurrency.split(",")]
    info = machine()
    print(
        f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, {info['wrk']}\n"
        f"gunicorn {info['worker_class']}: {info['workers']} workers x {info['threads']} threads, "
        f"keep-alive {info['keepalive']} s; {args.duration:g} s per run, wrk -t1; "
        "CDS client authentication off except in the *-jwt case\n"
    )
    signer = Signer()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmp:
        workdir = Path(tmp)
        with start_servers(workdir, signer) as servers:
            cases = build_cases(servers.fhir)
            if args.cases:
                wanted = set(args.cases.split(","))
                cases = [case for case in cases if case.name in wanted]
            print(HEADER)
            for case in cases:
                rows += measure(case, servers, signer, levels, args.duration, workdir)
    output = args.output or RESULTS / f"http-load-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"machine": info, "rows": rows}, indent=2), encoding="utf-8")
    print(
        "\nratio: req/s of the case / req/s of the baseline app at the same concurrency; "
        "cpu ms: server CPU time per request (all its processes), and the baseline's; "
        "workers: % of the requests each gunicorn worker answered"
    )
    print(f"results: {output}")


if __name__ == "__main__":
    main()
