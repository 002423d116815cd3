"""HTTP load benchmark: the service under its production server, driven by wrk, side by side with
a bare-Flask baseline and a HealthChain peer in the same run.

Starts on 127.0.0.1, each in its own process:
- `cytokine-cds serve` (gunicorn, the settings of the environment: CYTOKINE_CDS_WORKERS, _THREADS,
  ...), with CDS client authentication OFF, so the numbers are about the service's own work;
- the same with authentication ON (a trusted client with a static ES384 key), for one case;
- bench/baseline_app.py: a minimal Flask endpoint under the same gunicorn settings that parses the
  same body and returns a fixed card (the yardstick for the "x base" column);
- bench/healthchain_app.py: the same hooks written with HealthChain under uvicorn, from its own
  venv (`make bench-peer`; the "x HC" column; skipped with a note when that venv is missing);
- a FHIR R4 server (sekmet, from `make test`'s .fhir-venv) loaded with the fixture patients by
  `cytokine-cds load-fixtures`, for the no-prefetch case.
Then runs wrk (a separate process; `apt-get install -y wrk`) for a fixed time per case and
concurrency, prints requests/s, p50/p95/p99 latency, errors and the server CPU per call next to
the baseline's and the peer's, then how CPU per call grows with the prefetch and the draft
orders, then the targets met or not; everything goes to bench/results/http-load-<time>.json.
Everything it starts is stopped at the end.

The bodies are built from the fixtures as an EHR would send them (cds_service.demo.hook_request
runs every prefetch template of the service on fixtures/patients/lab-bench.json plus its chart,
fixtures/chart/lab-bench-covid19.json: a COVID-19 diagnosis, dexamethasone given, an allergy,
vital signs), so whatever the prefetch asks for (labs, cytokines, the chart context) is in
them. Cases: patient-view with full prefetch (the COVID-19 "needing oxygen" card); order-sign
with a mismatched draft order (the same chart with bacterial sepsis in place of COVID-19, and a
tocilizumab order: the sepsis rules' order-mismatch warning); patient-view without prefetch (the
service reads the FHIR server); patient-view with full prefetch plus an ES384 JWT, a fresh
token per request (signed beforehand: signing is the client's cost); and, with --cases,
discovery.

    make bench-peer && make bench     # or:
    .venv/bin/python bench/http_load.py [--duration 10] [--concurrency 8,32] [--cases ...]
"""

from __future__ import annotations

import argparse
import copy
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
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds_service.cards.templates import CardKit, default_cards_dir  # noqa: E402
from cds_service.composition import build_runtime  # noqa: E402
from cds_service.demo import FIXTURE_TIME, hook_request, shift_dates  # noqa: E402
from cds_service.settings import Settings  # noqa: E402
from tests.servers import free_port, stop, wait_until_up  # noqa: E402

BIN = Path(sys.executable).parent
LUA = ROOT / "bench" / "wrk_report.lua"
RESULTS = ROOT / "bench" / "results"
PATIENT = "lab-bench"
# The chart around the labs (COVID-19 diagnosis, dexamethasone, an allergy, vital signs), kept
# apart from the patient fixture the lab tests count on; merged into the bench patient.
CHART = "chart/lab-bench-covid19.json"
# The patient-view answer: the COVID-19 "needing oxygen" card (rules.yaml settings.covid19).
VIEW_SETTING = "covid19"
# The order-sign case: the same chart with bacterial sepsis recorded in place of COVID-19, and
# a tocilizumab order, which the sepsis rules warn against (no IL-6 blockade in bacterial
# sepsis): an order-mismatch card.
MISMATCH_DIAGNOSIS = {
    "coding": [
        {"system": "http://snomed.info/sct", "code": "91302008", "display": "Sepsis"},
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "A41.9", "display": "Sepsis"},
    ],
    "text": "Sepsis",
}
MISMATCHED_ORDER = "tocilizumab"
ISSUER = "https://bench-ehr.example"
SERVICES = {
    "patient-view": "cytokine-storm-patient-view",
    "order-sign": "cytokine-storm-order-sign",
}
# The HealthChain peer (bench/healthchain_app.py) in its own venv, served by uvicorn.
PEER_VENV = ROOT / "bench" / ".healthchain-venv"
PEER_WORKERS = 2  # uvicorn's asyncio workers: one per core
PEER_PATHS = {
    "patient-view": "/cds/cds-services/il6-patient-view",
    "order-sign": "/cds/cds-services/il6-order-sign",
}
# Large prefetches (1,500 Observations are ~1.4 MB) fit the 8 MiB default; the limit is set
# anyway, so that older commits measured side by side (1 MiB then) answer them too.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
GROWTH_OBSERVATIONS = (60, 300, 1500)
GROWTH_ORDERS = (1, 10, 50)
GROWTH_CONCURRENCY = 8
# Targets of the benchmark (goals, printed as met or not; never asserted by a test).
TARGET_LEVEL = 8
TARGET_CPU_MS = 2.0
TARGET_P99_MS = 25.0
TARGET_BASELINE_RATIO = 0.5
TARGET_PEER_RATIO = 10.0
TARGET_FHIR_P95_MS = 150.0


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
    peer_path: str | None = None  # the same call to the HealthChain peer, if it has one


@dataclass
class Servers:
    service: str = ""
    auth: str = ""
    baseline: str = ""
    peer: str = ""  # empty: the peer's venv is not installed
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


@cache
def topic(card_type: str) -> str:
    """The topic code the cards of a card type carry (from the shipped card templates)."""
    return CardKit(default_cards_dir()).templates[card_type].spec.topic.code


def body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def prefetch_resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource of a request's prefetch (Bundles unpacked; the same resource once)."""
    found: dict[tuple[Any, Any], dict[str, Any]] = {}
    for value in (request.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        items = [e.get("resource") for e in value.get("entry", [])] if "entry" in value else [value]
        for item in items:
            if isinstance(item, dict):
                found.setdefault((item.get("resourceType"), item.get("id")), item)
    return list(found.values())


def describe(request: dict[str, Any]) -> str:
    """What a body carries: '60 Observation, 1 Patient, 2 Condition; 54 KB'."""
    counts: dict[str, int] = {}
    for item in prefetch_resources(request):
        kind = str(item.get("resourceType"))
        counts[kind] = counts.get(kind, 0) + 1
    orders = (request.get("context") or {}).get("draftOrders")
    if orders:
        counts["draft order"] = len(orders.get("entry", []))
    parts = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda i: -i[1]))
    return f"{parts or 'no prefetch'}; {len(body(request)) / 1024:.0f} KB"


def observation_count(request: dict[str, Any]) -> int:
    return sum(r.get("resourceType") == "Observation" for r in prefetch_resources(request))


def with_observations(request: dict[str, Any], count: int) -> dict[str, Any]:
    """The request with its prefetched Observations grown to `count`: older copies of each
    result (new ids, 12 h further back per round), as a longer stay would have. The newest
    results stay the same, so the answer stays the same and only the reading grows."""
    grown = copy.deepcopy(request)
    originals = [
        (bundle, entry)
        for bundle in grown["prefetch"].values()
        if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle"
        for entry in bundle.get("entry", [])
        if entry.get("resource", {}).get("resourceType") == "Observation"
    ]
    round_ = 0
    while (missing := count - observation_count(grown)) > 0:
        round_ += 1
        for bundle, entry in originals[:missing]:
            older = shift_dates(entry, timedelta(hours=-12 * round_))
            older["resource"]["id"] = f"{older['resource']['id']}-r{round_}"
            older["fullUrl"] = f"Observation/{older['resource']['id']}"
            bundle["entry"].append(older)
    for bundle in grown["prefetch"].values():
        if isinstance(bundle, dict) and "total" in bundle:
            bundle["total"] = len(bundle.get("entry", []))
    return grown


def with_orders(request: dict[str, Any], count: int) -> dict[str, Any]:
    """The order-sign request with `count` copies of its first draft order (new ids)."""
    grown = copy.deepcopy(request)
    orders = grown["context"]["draftOrders"]
    first = orders["entry"][0]
    orders["entry"] = []
    for n in range(1, count + 1):
        entry = copy.deepcopy(first)
        entry["resource"]["id"] = f"{first['resource'].get('id', 'order')}-{n}"
        if "fullUrl" in entry:
            entry["fullUrl"] = f"MedicationRequest/{entry['resource']['id']}"
        orders["entry"].append(entry)
    return grown


def build_requests(fhir_base: str, chart: bool = True) -> dict[str, dict[str, Any]]:
    """The hook requests of the cases, composed from the fixtures as an EHR would send them
    (`chart`: with the bench patient's chart; without it, the labs alone)."""
    runtime = build_runtime(Settings(auth="off"))
    now = datetime.now(UTC)
    patient = load_json(f"patients/{PATIENT}.json")
    septic = copy.deepcopy(patient)
    if chart:
        patient["entry"] = [*patient["entry"], *load_json(CHART)["entry"]]
        septic["entry"] = [*septic["entry"], *with_sepsis(load_json(CHART))["entry"]]
    view = runtime.services[SERVICES["patient-view"]]
    sign = runtime.services[SERVICES["order-sign"]]
    orders = load_json(f"orders/{MISMATCHED_ORDER}.json")
    return {
        "full": hook_request(view, patient, now=now),
        "mismatch": hook_request(sign, septic, now=now, draft_orders=orders),
        "bare": hook_request(view, patient, now=now, prefetch=False, fhir_server=fhir_base),
    }


def with_sepsis(chart: dict[str, Any]) -> dict[str, Any]:
    """The chart with its COVID-19 diagnosis recoded as bacterial sepsis."""
    for entry in chart["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Condition" and resource["code"]["text"] == "COVID-19":
            resource["code"] = copy.deepcopy(MISMATCH_DIAGNOSIS)
            return chart
    raise SystemExit(f"{CHART}: no COVID-19 Condition to recode")


@cache
def view_topic() -> str:
    """The topic code of the card the bench patient's patient-view answers with."""
    rules = build_runtime(Settings(auth="off")).rules
    return rules.settings[VIEW_SETTING].states[0].topic.code


def build_cases(requests_: dict[str, dict[str, Any]]) -> list[Case]:
    full, mismatch, bare = requests_["full"], requests_["mismatch"], requests_["bare"]
    view_path = f"/cds-services/{SERVICES['patient-view']}"
    return [
        Case(
            "patient-view-prefetch",
            f"patient-view, full prefetch ({describe(full)})",
            "POST",
            view_path,
            body(full),
            expect=view_topic(),
            peer_path=PEER_PATHS["patient-view"],
        ),
        Case(
            "order-sign-mismatch",
            f"order-sign, mismatched draft order ({MISMATCHED_ORDER}; {describe(mismatch)})",
            "POST",
            f"/cds-services/{SERVICES['order-sign']}",
            body(mismatch),
            expect=topic("order-mismatch"),
            peer_path=PEER_PATHS["order-sign"],
        ),
        Case(
            "patient-view-fhir",
            "patient-view, no prefetch (reads the local FHIR server)",
            "POST",
            view_path,
            body(bare),
            expect=view_topic(),
        ),
        Case(
            "patient-view-prefetch-jwt",
            "patient-view, full prefetch, ES384 JWT per request (auth on)",
            "POST",
            view_path,
            body(full),
            target="auth",
            tokens=True,
            expect=view_topic(),
            peer_path=PEER_PATHS["patient-view"],  # the peer has no authentication
        ),
        Case("discovery", "discovery (GET /cds-services)", "GET", "/cds-services"),
    ]


def growth_cases(requests_: dict[str, dict[str, Any]]) -> list[tuple[str, int, Case]]:
    """(what grows, how many, case): the cost-growth table's calls."""
    full, mismatch = requests_["full"], requests_["mismatch"]
    found: list[tuple[str, int, Case]] = []
    for count in sorted({max(n, observation_count(full)) for n in GROWTH_OBSERVATIONS}):
        grown = with_observations(full, count)
        case = Case(
            f"observations-{count}",
            describe(grown),
            "POST",
            f"/cds-services/{SERVICES['patient-view']}",
            body(grown),
            expect=view_topic(),
        )
        found.append(("Observations", count, case))
    for count in GROWTH_ORDERS:
        grown = with_orders(mismatch, count)
        case = Case(
            f"orders-{count}",
            describe(grown),
            "POST",
            f"/cds-services/{SERVICES['order-sign']}",
            body(grown),
            expect=topic("order-mismatch"),
        )
        found.append(("draft orders", count, case))
    return found


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


def shifted_fixtures(workdir: Path) -> list[Path]:
    """The fixture patients, then the charts around them, with their dates moved to now (as
    hook_request moves prefetch), so the FHIR server holds data as fresh as prefetch sends.
    Folders in upload order: a chart refers to its patient."""
    delta = datetime.now(UTC) - FIXTURE_TIME
    folders = []
    for name in ("patients", "chart"):
        folder = workdir / name
        folder.mkdir()
        for path in sorted((ROOT / "fixtures" / name).glob("*.json")):
            bundle = json.loads(path.read_text(encoding="utf-8"))
            shifted = json.dumps(shift_dates(bundle, delta))
            (folder / path.name).write_text(shifted, encoding="utf-8")
        folders.append(folder)
    return folders


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
        "CYTOKINE_CDS_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        **extra,
    }


def peer_binary() -> Path | None:
    uvicorn = PEER_VENV / "bin" / "uvicorn"
    return uvicorn if os.access(uvicorn, os.X_OK) else None


def peer_version() -> str:
    python = PEER_VENV / "bin" / "python"
    found = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('healthchain'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() if found.returncode == 0 else ""


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
            [
                cds,
                "load-fixtures",
                "--fhir-server",
                servers.fhir,
                *map(str, shifted_fixtures(workdir)),
            ],
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
            # The URL clients call: the JWT audience (auth on) and the base of profile links.
            env = service_env(workdir, name, CYTOKINE_CDS_PUBLIC_BASE_URL=base, **extra)
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

        uvicorn = peer_binary()
        if uvicorn is not None:
            port = free_port()
            command = [
                str(uvicorn), "--app-dir", str(ROOT / "bench"), "healthchain_app:app",
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(PEER_WORKERS),
            ]  # fmt: skip
            servers.peer = f"http://127.0.0.1:{port}"
            servers.logs["peer"], servers.pids["peer"] = stack.enter_context(
                process("peer", command, f"{servers.peer}/health", dict(os.environ), workdir)
            )
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


def check_case(case: Case, base: str, headers: dict[str, str], path: str | None = None) -> None:
    """One request before the run: the case must answer 200 with the expected card (the peer,
    given its `path`, with a card)."""
    response = requests.request(
        case.method,
        base + (path or case.path),
        data=case.body,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )
    if response.status_code != 200:
        raise SystemExit(f"{case.name}: HTTP {response.status_code}: {response.text[:500]}")
    if path is not None:
        if not response.json().get("cards"):
            raise SystemExit(f"{case.name}: the peer answered no card")
    elif case.expect:
        topics = [c["source"].get("topic", {}).get("code") for c in response.json()["cards"]]
        if case.expect not in topics:
            # The setting-aware rules decide which card fits; the case is measured anyway.
            print(f"  ({case.name}: expected a {case.expect} card, got {topics})", flush=True)


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
    yardsticks: dict[tuple[str, bytes | None, int], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The case at each concurrency, and the baseline and the peer on the same body in the
    same run (each measured once per body and concurrency: `yardsticks` keeps them)."""
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
        others: dict[str, dict[str, Any] | None] = {}
        for name, path in (("baseline", case.path), ("peer", case.peer_path)):
            server = getattr(servers, name)
            if not server or path is None:
                others[name] = None
                continue
            key = (f"{name} {case.method} {path}", case.body, concurrency)
            if key not in yardsticks:
                if name == "peer":
                    check_case(case, server, {}, path)
                run_wrk(server + path, case, concurrency, min(2, duration), workdir)
                yardsticks[key] = run_wrk(
                    server + path, case, concurrency, duration, workdir,
                    server_pid=servers.pids[name],
                )  # fmt: skip
            others[name] = yardsticks[key]
        rows.append(
            {
                "case": case.name,
                "title": case.title,
                "concurrency": concurrency,
                "result": result,
                "baseline": others["baseline"],
                "peer": others["peer"],
                "ratio": _ratio(result, others["baseline"]),
                "peer_ratio": _ratio(result, others["peer"]),
            }
        )
        print_row(rows[-1])
    return rows


def _ratio(result: dict[str, Any], other: dict[str, Any] | None) -> float | None:
    return result["rps"] / other["rps"] if other and other["rps"] else None


def measure_growth(
    growth: list[tuple[str, int, Case]], servers: Servers, duration: int, workdir: Path
) -> list[dict[str, Any]]:
    """CPU per call as the prefetch and the draft orders grow (c = GROWTH_CONCURRENCY)."""
    rows = []
    print(GROWTH_HEADER)
    for what, count, case in growth:
        check_case(case, servers.service, {})
        url = servers.service + case.path
        run_wrk(url, case, GROWTH_CONCURRENCY, min(2, duration), workdir)  # warm-up
        result = run_wrk(
            url, case, GROWTH_CONCURRENCY, duration, workdir, server_pid=servers.pids["service"]
        )
        rows.append({"grows": what, "count": count, "body": case.title, "result": result})
        print_growth_row(rows[-1])
    for what in dict.fromkeys(row["grows"] for row in rows):
        mine = [r for r in rows if r["grows"] == what]
        first, last = mine[0], mine[-1]
        slope = (_cpu(last) - _cpu(first)) / (last["count"] - first["count"])
        print(f"  {what}: +{1000 * slope:.1f} µs of CPU per extra one")
    return rows


def _cpu(row: dict[str, Any]) -> float:
    return float(row["result"]["server_cpu_ms_per_request"])


HEADER = (
    f"{'case':<26} {'c':>3} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'err':>4} "
    f"{'cpu ms':>6} | {'base r/s':>8} {'x base':>6} {'cpu':>5} | {'HC r/s':>6} {'HC p99':>7} "
    f"{'x HC':>5} {'cpu':>5} | {'workers':>11}  other CPU"
)
GROWTH_HEADER = (
    f"\nHow CPU per call grows (c = {GROWTH_CONCURRENCY}, server CPU per answered call)\n"
    f"{'grows':<13} {'count':>6} {'cpu ms':>7} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}  body"
)
BUSY_MACHINE = 10.0  # % of all cores used by other processes that flags a run
QUIET_WAIT = 0.0  # seconds to wait for a quiet machine before each run (--wait-quiet)


def _other(*results: dict[str, Any] | None) -> str:
    others = [r["other_cpu_percent"] for r in results if r is not None]
    if not others or None in others:
        return "-"
    text = f"{max(others):.0f}%"
    return text + " (busy machine: numbers unreliable)" if max(others) > BUSY_MACHINE else text


def print_row(row: dict[str, Any]) -> None:
    result, latency = row["result"], row["result"]["latency_ms"]
    baseline, peer = row["baseline"], row["peer"]
    print(
        f"{row['case']:<26} {row['concurrency']:>3} {result['rps']:>7.0f} {latency['50']:>7.2f} "
        f"{latency['95']:>7.2f} {latency['99']:>7.2f} {result['error_count']:>4} "
        f"{_ms(result):>6} | {_rps(baseline):>8} {_x(row['ratio']):>6} {_ms(baseline):>5} | "
        f"{_rps(peer):>6} {_p99(peer):>7} {_x(row['peer_ratio']):>5} {_ms(peer):>5} | "
        f"{_shares(result):>11}  {_other(result, baseline, peer)}",
        flush=True,
    )


def print_growth_row(row: dict[str, Any]) -> None:
    result, latency = row["result"], row["result"]["latency_ms"]
    print(
        f"{row['grows']:<13} {row['count']:>6} {_ms(result):>7} {result['rps']:>7.0f} "
        f"{latency['50']:>7.2f} {latency['99']:>7.2f}  {row['body']}  {_other(result)}",
        flush=True,
    )


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The benchmark's targets at c = TARGET_LEVEL, each said met or not."""

    def check(label: str, value: float | None, limit: float, below: bool, unit: str = "") -> str:
        if value is None:
            return f"{label} not measured"
        met = value <= limit if below else value >= limit
        sign = "≤" if below else "≥"
        return f"{label} {value:.2f}{unit} ({sign} {limit:g}{unit}: {'met' if met else 'NOT met'})"

    lines = []
    for row in rows:
        if row["concurrency"] != TARGET_LEVEL:
            continue
        result = row["result"]
        latency = result["latency_ms"]
        if row["case"] == "patient-view-fhir":
            checks = [check("p95", latency["95"], TARGET_FHIR_P95_MS, True, " ms")]
        elif row["case"] == "discovery":
            continue
        else:
            checks = [
                check("CPU/call", result["server_cpu_ms_per_request"], TARGET_CPU_MS, True, " ms"),
                check("p99", latency["99"], TARGET_P99_MS, True, " ms"),
                check("x baseline", row["ratio"], TARGET_BASELINE_RATIO, False),
                check("x HealthChain", row["peer_ratio"], TARGET_PEER_RATIO, False),
            ]
        checks.append(f"errors {result['error_count']}")
        lines.append(f"  {row['case']}: " + "; ".join(checks))
    return lines


def _rps(result: dict[str, Any] | None) -> str:
    return "-" if result is None else f"{result['rps']:.0f}"


def _p99(result: dict[str, Any] | None) -> str:
    return "-" if result is None else f"{result['latency_ms']['99']:.1f}"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


def _shares(result: dict[str, Any]) -> str:
    shares = sorted(result.get("worker_share", {}).values(), reverse=True)
    return "/".join(f"{100 * share:.0f}" for share in shares) or "-"


def _ms(result: dict[str, Any] | None) -> str:
    value = None if result is None else result.get("server_cpu_ms_per_request")
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
        "store": "SQLite (the default) in a temporary data dir",
        "profile_page": settings.profile_page,
        "log_level": settings.log_level,
        "healthchain": peer_version() if peer_binary() else "",
    }


def print_settings(info: dict[str, Any], args: argparse.Namespace) -> None:
    peer = (
        f"HealthChain {info['healthchain']} (bench/healthchain_app.py) under uvicorn, "
        f"{PEER_WORKERS} workers, access log on"
        if info["healthchain"]
        else "HealthChain peer not installed (`make bench-peer`): its columns stay empty"
    )
    print(
        f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, {info['wrk']}\n"
        f"service and baseline: gunicorn {info['worker_class']}, {info['workers']} workers x "
        f"{info['threads']} threads, keep-alive {info['keepalive']} s\n"
        f"service: every feature on (audit trail: {info['store']}; profile page data: "
        f"{info['profile_page']}; metrics; JSON request log at {info['log_level']}); CDS client "
        f"authentication off except in the *-jwt case (ES384, one fresh JWT per call); "
        f"CYTOKINE_CDS_MAX_REQUEST_BYTES={MAX_REQUEST_BYTES} (for the 1,500-Observation body)\n"
        f"peer: {peer}\n"
        f"wrk -t1 -c<c> -d{args.duration}s --timeout 10s, 2 s warm-up before each run; growth "
        f"runs {args.growth_duration} s at c = {GROWTH_CONCURRENCY}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--concurrency", default="8,32", help="connections, comma-separated")
    parser.add_argument(
        "--cases",
        help="case names, comma-separated (default: all but discovery; 'none' for no case)",
    )
    parser.add_argument(
        "--growth-duration", type=int, default=5, help="seconds per cost-growth run (0: skip)"
    )
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
    print_settings(info, args)
    signer = Signer()
    rows: list[dict[str, Any]] = []
    growth_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmp:
        workdir = Path(tmp)
        with start_servers(workdir, signer) as servers:
            hook_requests = build_requests(servers.fhir)
            cases = build_cases(hook_requests)
            wanted = set((args.cases or "").split(",")) - {""}
            cases = [c for c in cases if c.name in wanted or (not wanted and c.name != "discovery")]
            yardsticks: dict[tuple[str, bytes | None, int], dict[str, Any]] = {}
            if cases:
                for case in cases:
                    print(f"{case.name}: {case.title}")
                print("\n" + HEADER)
            for case in cases:
                rows += measure(case, servers, signer, levels, args.duration, workdir, yardsticks)
            if args.growth_duration > 0:
                growth = growth_cases(hook_requests)
                growth_rows = measure_growth(growth, servers, args.growth_duration, workdir)
    output = args.output or RESULTS / f"http-load-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps({"machine": info, "rows": rows, "growth": growth_rows}, indent=2),
        encoding="utf-8",
    )
    print(
        "\ncpu ms: server CPU time per answered call (all its processes); base: the bare-Flask "
        "baseline on the same body, x base: req/s of the case / the baseline's; HC: the "
        "HealthChain peer on the same body, x HC: req/s of the case / the peer's; workers: % of "
        "the calls each gunicorn worker answered; other CPU: what other processes used meanwhile"
    )
    lines = targets(rows)
    if lines:
        print(f"\nTargets at c = {TARGET_LEVEL}:")
        print("\n".join(lines))
    print(f"results: {output}")


if __name__ == "__main__":
    main()
