"""What the audit trail adds to a hook call: record_answer() timed on SQLite and PostgreSQL.

record_answer() is the whole cost the hook endpoint pays: the patient-key HMAC, building the
record and one committed transaction (the hook call row and its cards). Each answer here has two
cards with suggestions and a two-value evidence summary, like a typical patient-view answer.

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

from cds_service.app import _build_runtime
from cds_service.hooks.request import HookRequest, PatientViewContext
from cds_service.pipeline import record_answer
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from cds_service.store import AuditStore
from tests.store.helpers import make_response


def measure(label: str, database_url: str, data_dir: Path, calls: int) -> None:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,  # type: ignore[arg-type]
        patient_key_secret="bench-secret-of-enough-length",  # type: ignore[arg-type]
    )
    store = AuditStore.from_settings(settings)
    store.prepare(auto_upgrade=True)
    runtime = Runtime(settings=settings, services=_build_runtime(settings).services, store=store)
    service = runtime.services["cytokine-storm-patient-view"]
    context = PatientViewContext(userId="Practitioner/1", patientId="patient-1")
    answers = [make_response("il6-driven", "multiplex-assay-needed") for _ in range(calls + 50)]
    requests = [
        HookRequest(hook="patient-view", hookInstance=f"bench-{n}", context={})
        for n in range(calls + 50)
    ]
    for n in range(50):  # warm the pool and caches
        record_answer(runtime, service, requests[n], context, answers[n])
    timings = []
    for n in range(50, calls + 50):
        started = time.perf_counter()
        record_answer(runtime, service, requests[n], context, answers[n])
        timings.append((time.perf_counter() - started) * 1000)
    assert store.counters.audit_write_failures == 0
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
