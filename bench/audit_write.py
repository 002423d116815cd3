"""What the audit trail adds to a hook call: record_answer() timed on SQLite and PostgreSQL.

record_answer() is the whole cost the hook endpoint pays: the patient-key HMAC, building the
record (evidence summary and the profile page's data) and one committed transaction (the hook
call row, its card and the profile). Each answer is a real patient-view answer for the IL-1 fixture
patient (one card with a suggestion, 15 judged values), computed before the clock starts.

    python bench/audit_write.py [--calls 2000] [--database-url postgresql://...]

Without --database-url it measures SQLite (a temp file) and a throwaway local PostgreSQL
server (started like the tests do).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datetime import UTC, datetime

from cds_service.composition import build_runtime, open_audit_store
from cds_service.observability.metrics import metrics
from cds_service.recording import record_decision
from cds_service.settings import Settings
from tests.conftest import decide_bundle, load_fixture

FIXTURE_TIME = datetime(2026, 11, 20, 12, tzinfo=UTC)


def measure(label: str, database_url: str, data_dir: Path, calls: int) -> None:
    settings = Settings(
        auth="off",
        data_dir=data_dir,
        database_url=database_url,  # type: ignore[arg-type]
        patient_key_secret="bench-secret-of-enough-length",  # type: ignore[arg-type]
    )
    store = open_audit_store(settings)
    store.prepare(auto_upgrade=True)
    runtime = build_runtime(settings, store=store)
    bundle = load_fixture("patients/css-il1-mals.json")
    answers = [decide_bundle(runtime.knowledge, bundle, FIXTURE_TIME) for _ in range(calls + 50)]

    def record(n: int) -> None:
        record_decision(
            store,
            runtime.knowledge,
            answers[n],
            hook_instance=f"bench-{n}",
            service_id="cytokine-storm-patient-view",
            hook="patient-view",
            patient_id="patient-1",
        )

    for n in range(50):  # warm the pool and caches
        record(n)
    timings = []
    for n in range(50, calls + 50):
        started = time.perf_counter()
        record(n)
        timings.append((time.perf_counter() - started) * 1000)
    failures = metrics().registry.get_sample_value("cytokine_cds_audit_write_failures_total")
    assert not failures, f"{failures} audit writes failed"
    timings.sort()
    print(
        f"{label:<11} {calls} calls: mean {statistics.fmean(timings):.3f} ms, "
        f"p50 {timings[len(timings) // 2]:.3f} ms, p99 {timings[int(len(timings) * 0.99)]:.3f} ms, "
        f"max {timings[-1]:.3f} ms"
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--database-url", help="measure this database only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp, ExitStack() as stack:
        data = Path(temp)
        if args.database_url:
            measure("configured", args.database_url, data, args.calls)
            return
        measure("sqlite", f"sqlite:///{data / 'bench.db'}", data, args.calls)
        from tests.postgres import fresh_database, postgres_server

        admin = stack.enter_context(postgres_server())
        measure("postgresql", stack.enter_context(fresh_database(admin)), data, args.calls)


if __name__ == "__main__":
    main()
