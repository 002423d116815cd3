"""Population screening throughput and peak memory, local and Spark, on synthetic censuses.

For each census size (healthy patients with about ten resources each, plus the planted fixture
patients) it runs `cytokine-cds screen` as a separate process, once per engine configuration:

- `local, 1 worker`: the baseline (one process screens every patient in turn);
- `local, N workers`: the default engine with N worker processes;
- `spark local[N]`: the Spark engine in local mode (skipped without PySpark).

and prints wall time (process start to exit: imports, knowledge loading, Spark start-up
included), the screening time the command reports, patients per second of each, and the peak
resident memory of the whole process tree (the command, its workers, Spark's JVM and Python
workers), sampled every 50 ms. Each run's worklist is compared with the baseline's (same bytes).
Teammates may share the CPU: run it on a quiet machine and read the numbers side by side.

    python bench/screening.py [--sizes 10000 100000] [--workers 2] [--engines local spark]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds_service.screening.census import CensusSpec, write_census  # noqa: E402

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CLI = Path(sys.executable).with_name("cytokine-cds")


class PeakMemory:
    """Peak summed RSS of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                total = 0
                for process in tree:
                    with contextlib.suppress(psutil.Error):  # it may just have ended
                        total += process.memory_info().rss
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run(census: Path, out: Path, engine: str, workers: int) -> tuple[float, float, int, str]:
    command = [
        str(CLI), "screen", str(census), "--out", str(out), "--as-of", AS_OF.isoformat(),
        "--engine", engine, "--workers", str(workers),
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(process.pid)
    _, stderr = process.communicate()
    wall = time.perf_counter() - started
    peak = memory.stop()
    if process.returncode != 0:
        raise SystemExit(f"{engine} run failed ({process.returncode}):\n{stderr[-3000:]}")
    match = re.search(r"screened (\d+) patients .* in ([\d.]+) s", stderr)
    assert match, stderr
    return wall, float(match.group(2)), peak, hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engines", nargs="+", default=["local", "spark"])
    parser.add_argument("--no-baseline", action="store_true", help="skip the 1-worker baseline")
    args = parser.parse_args()
    planted = sorted((ROOT / "fixtures" / "patients").glob("css-*.json"))
    configs: list[tuple[str, str, int]] = []
    if not args.no_baseline:
        configs.append(("local, 1 worker (baseline)", "local", 1))
    if "local" in args.engines:
        configs.append((f"local, {args.workers} workers", "local", args.workers))
    if "spark" in args.engines:
        try:
            import pyspark  # noqa: F401

            configs.append((f"spark local[{args.workers}]", "spark", args.workers))
        except ImportError:
            print("spark: skipped (pip install 'cytokine-cds[spark]')")
    print(f"cpus: {psutil.cpu_count()}, load average: {psutil.getloadavg()[0]:.1f}")
    header = (
        f"{'patients':>9} {'engine':<28} {'wall s':>8} {'pat/s':>8} {'screen s':>9} "
        f"{'pat/s':>8} {'peak MB':>8}  same output"
    )
    print(header)
    with tempfile.TemporaryDirectory(prefix="bench-screening-") as scratch:
        for size in args.sizes:
            census = Path(scratch) / f"census-{size}"
            started = time.perf_counter()
            write_census(CensusSpec(size, AS_OF, planted, seed=1), census)
            patients = size + len(planted)
            megabytes = sum(p.stat().st_size for p in census.glob("*.ndjson")) / 1e6
            print(
                f"# census of {patients} patients, {megabytes:.0f} MB NDJSON, "
                f"written in {time.perf_counter() - started:.1f} s"
            )
            baseline: str | None = None
            for label, engine, workers in configs:
                out = Path(scratch) / f"out-{size}-{engine}-{workers}.ndjson"
                wall, screen, peak, digest = run(census, out, engine, workers)
                baseline = baseline or digest
                print(
                    f"{patients:>9} {label:<28} {wall:>8.1f} {patients / wall:>8.0f} "
                    f"{screen:>9.1f} {patients / screen:>8.0f} {peak / 1e6:>8.0f}  "
                    f"{'yes' if digest == baseline else 'NO'}",
                    flush=True,
                )
                out.unlink()
            for path in census.iterdir():
                path.unlink()
            census.rmdir()
    print(f"load average after: {psutil.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
