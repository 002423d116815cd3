"""Where one hook call's CPU goes: the Flask app in-process (every feature on, SQLite audit
store in a temporary folder), driven with the bodies of bench/http_load.py.

Prints the CPU time per call (process time, median of batches) and, with --profile, the
functions that take it (cProfile; --pyinstrument for a call tree when pyinstrument is installed).
No gunicorn, no sockets: the numbers are the app's own work, a little below what http_load.py's
server CPU per call shows.

    .venv/bin/python bench/profile_call.py [--case full|mismatch] [--observations 300]
                                           [--orders 10] [--calls 300] [--profile] [--stages]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from http_load import (  # noqa: E402
    MAX_REQUEST_BYTES,
    SERVICES,
    build_requests,
    with_observations,
    with_orders,
)

from cds_service.app import create_app  # noqa: E402
from cds_service.observability.logs import configure_logging  # noqa: E402
from cds_service.serving import settle_collector  # noqa: E402
from cds_service.settings import Settings  # noqa: E402


def request_body(args: argparse.Namespace) -> tuple[str, bytes]:
    # (The no-prefetch body is not used.)
    requests_ = build_requests("http://127.0.0.1:9/fhir", chart=not args.labs_only)
    request: dict[str, Any] = requests_[args.case]
    if args.observations:
        request = with_observations(request, args.observations)
    if args.orders:
        request = with_orders(request, args.orders)
    service = SERVICES["order-sign" if args.case == "mismatch" else "patient-view"]
    return f"/cds-services/{service}", json.dumps(request).encode()


# The stages of a hook call, as the modules that call them name them (nested ones are inside
# their caller's time: decide holds the evidence, the chart, the scores, the rules, the cards).
STAGES = {
    "cds_service.api.hooks": ("json_body", "gather_record", "decide", "record_decision"),
    "cds_service.decision": ("build_evidence", "read_chart", "compute_scores", "assess"),
    "cds_service.recording": ("profile_record",),
}


def timed_stages() -> dict[str, float]:
    """Wrap each stage to add up its process time; the wrapping costs ~1 µs a stage."""
    spent: dict[str, float] = {}
    for module_name, names in STAGES.items():
        module = importlib.import_module(module_name)
        for name in names:
            spent[name] = 0.0
            setattr(module, name, _timed(getattr(module, name), name, spent))
    store = importlib.import_module("cds_service.store.audit").AuditStore
    spent["AuditStore.record_hook_call"] = 0.0
    store.record_hook_call = _timed(store.record_hook_call, "AuditStore.record_hook_call", spent)
    return spent


def _timed(function: Any, name: str, spent: dict[str, float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.process_time() - started

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("full", "mismatch"), default="full")
    parser.add_argument("--observations", type=int, default=0, help="grow the prefetch to this")
    parser.add_argument("--orders", type=int, default=0, help="this many draft orders")
    parser.add_argument("--labs-only", action="store_true", help="without the chart context")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="cProfile: top functions")
    parser.add_argument("--pyinstrument", action="store_true", help="pyinstrument call tree")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    parser.add_argument(
        "--stages", action="store_true", help="CPU per call of each stage, without a profiler"
    )
    parser.add_argument(
        "--default-gc", action="store_true", help="Python's collector settings, not serve()'s"
    )
    args = parser.parse_args()
    path, body = request_body(args)
    # The request log as `serve` writes it (JSON at INFO), into /dev/null.
    configure_logging("INFO", "json")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
    # The store's WAL checkpointer thread may still touch the folder as it is removed.
    with tempfile.TemporaryDirectory(prefix="cds-profile-", ignore_cleanup_errors=True) as tmp:
        app = create_app(
            Settings(auth="off", data_dir=Path(tmp), max_request_bytes=MAX_REQUEST_BYTES)
        )
        client = app.test_client()
        headers = {"Content-Type": "application/json"}
        if not args.default_gc:
            settle_collector()  # as `serve` does before gunicorn forks its workers

        def call() -> None:
            response = client.post(path, data=body, headers=headers)
            assert response.status_code == 200, response.text

        for _ in range(30):  # warm-up: first calls fill caches, compile templates
            call()
        batches = []
        for _ in range(5):
            started = time.process_time()
            for _ in range(args.calls // 5):
                call()
            batches.append((time.process_time() - started) / (args.calls // 5))
        print(
            f"{path} ({len(body) / 1024:.0f} KB): {1000 * statistics.median(batches):.2f} ms "
            f"CPU per call (median of 5 batches of {args.calls // 5}; "
            f"min {1000 * min(batches):.2f}, max {1000 * max(batches):.2f})"
        )
        if args.stages:
            spent = timed_stages()
            for _ in range(args.calls):
                call()
            for stage, seconds in sorted(spent.items(), key=lambda item: -item[1]):
                print(f"  {stage:<34} {1000 * seconds / args.calls:6.2f} ms")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.calls):
                call()
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(args.sort).print_stats(40)
            print(out.getvalue())
        if args.pyinstrument:
            from pyinstrument import Profiler

            tree = Profiler(interval=0.0002)
            tree.start()
            for _ in range(args.calls):
                call()
            tree.stop()
            print(tree.output_text(unicode=True, show_all=False))


if __name__ == "__main__":
    main()
