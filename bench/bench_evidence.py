"""Time build_evidence on the 60-Observation bench patient; print median and p95 in µs.

Usage: python bench/bench_evidence.py [--iterations N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from cds_service.evidence import build_evidence, load_catalog

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "patients" / "lab-bench.json"
AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()

    started = time.perf_counter()
    catalog = load_catalog()
    load_ms = (time.perf_counter() - started) * 1000
    bundle = json.loads(FIXTURE.read_text(encoding="utf-8"))
    observations = sum(e["resource"]["resourceType"] == "Observation" for e in bundle["entry"])

    for _ in range(200):  # warm-up
        build_evidence([bundle], catalog, AS_OF)
    samples = []
    for _ in range(args.iterations):
        t0 = time.perf_counter_ns()
        evidence = build_evidence([bundle], catalog, AS_OF)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(f"catalog load: {load_ms:.0f} ms (once at start-up)")
    print(
        f"build_evidence on {observations} Observations -> {len(evidence.analytes)} analytes, "
        f"{len(evidence.problems)} problems, {args.iterations} runs"
    )
    print(f"median: {statistics.median(samples):.0f} µs  p95: {p95:.0f} µs")


if __name__ == "__main__":
    main()
