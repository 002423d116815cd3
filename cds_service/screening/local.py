"""The local engine: stream the export into per-patient buckets on disk, screen them in parallel.

Memory stays flat however large the export: lines are hashed by patient id into bucket files
(each small enough to group in memory), worker processes screen one bucket at a time (the
knowledge is loaded once per worker), each bucket's rows are written sorted, and the sorted bucket
files are merged into the output in one streaming pass.
"""

from __future__ import annotations

import heapq
import multiprocessing
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from cds_service.screening.decide import KnowledgeFiles
from cds_service.screening.evaluate import Tally, screen_patient, sort_key
from cds_service.screening.source import ExportFile, Line, parse_line, patient_of, read_lines

BUCKET_BYTES = 4 * 1024 * 1024  # export bytes per bucket: what one worker groups in memory
GZIP_RATIO = 8  # NDJSON of FHIR resources compresses about this much
MAX_BUCKETS = 256  # open files while partitioning
_PROGRESS_EVERY = 10_000  # lines

RowSink = Callable[[Iterator[dict[str, Any]]], None]


@dataclass(frozen=True)
class Job:
    files: Sequence[ExportFile]
    as_of: datetime
    knowledge: KnowledgeFiles
    workers: int


class Progress:
    """A progress bar on a terminal, nothing otherwise (tqdm)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def bar(self, description: str, unit: str, total: int | None = None) -> Any:
        from tqdm import tqdm

        return tqdm(desc=description, unit=unit, total=total, disable=not self.enabled, leave=False)


def run_local(job: Job, workdir: Path, write_rows: RowSink, progress: Progress) -> Tally:
    tally = Tally()
    count = bucket_count(job.files, job.workers)
    buckets = partition(job.files, workdir, count, tally, progress)
    tasks = [(path, path.with_suffix(".rows"), job.as_of, job.knowledge) for path in buckets]
    results: list[Path] = []
    with progress.bar("screening", "buckets", total=len(tasks)) as bar:
        if job.workers <= 1:
            for task in tasks:
                results.append(_screened(screen_bucket(task), tally))
                bar.update()
        else:
            context = _process_context()
            with ProcessPoolExecutor(
                job.workers, mp_context=context, initializer=_load, initargs=(job.knowledge,)
            ) as pool:
                for future in as_completed([pool.submit(screen_bucket, task) for task in tasks]):
                    results.append(_screened(future.result(), tally))
                    bar.update()
    write_rows(merge_rows(sorted(results)))
    return tally


def bucket_count(files: Sequence[ExportFile], workers: int) -> int:
    size = sum(f.path.stat().st_size * (GZIP_RATIO if f.name.endswith(".gz") else 1) for f in files)
    return max(min(size // BUCKET_BYTES + 1, MAX_BUCKETS), 4 * max(workers, 1))


def partition(
    files: Sequence[ExportFile], workdir: Path, count: int, tally: Tally, progress: Progress
) -> list[Path]:
    """Write every line that names a patient into bucket `crc32(patient id) % count`."""
    paths = [workdir / f"bucket-{index:04d}" for index in range(count)]
    with ExitStack() as stack, progress.bar("reading", "lines") as bar:
        handles: list[BinaryIO] = [
            stack.enter_context(path.open("wb", buffering=256 * 1024)) for path in paths
        ]
        pending = 0
        for file in files:
            for line in read_lines(file):
                pending += 1
                if pending == _PROGRESS_EVERY:
                    bar.update(pending)
                    pending = 0
                patient = patient_of(line)
                if patient is None:
                    tally.note_unattributed(line)
                    continue
                header = orjson.dumps([patient, line.file, line.number, line.resource is not None])
                key = zlib.crc32(patient.encode("utf-8", "surrogatepass")) % count
                handles[key].write(header + b"\t" + line.raw + b"\n")
        bar.update(pending)
    return paths


def screen_bucket(task: tuple[Path, Path, datetime, KnowledgeFiles]) -> tuple[Path, Tally]:
    """Screen the patients of one bucket; write their rows, sorted, to the task's rows file."""
    bucket, rows_path, as_of, knowledge = task
    groups: dict[str, list[tuple[str, int, bytes, bool]]] = {}
    with bucket.open("rb") as handle:
        for raw_line in handle:
            header, _, raw = raw_line.rstrip(b"\n").partition(b"\t")
            patient, file, number, parsed = orjson.loads(header)
            groups.setdefault(patient, []).append((file, number, raw, parsed))
    tally = Tally()
    rows = []
    for patient, items in groups.items():
        # Parsed here, one patient at a time, so a bucket's resources are never all in memory.
        lines = [Line(f, n, raw, parse_line(raw) if ok else None) for f, n, raw, ok in items]
        row = screen_patient(knowledge, patient, lines, as_of, tally)
        if row is not None:
            rows.append(row)
    rows.sort(key=sort_key)
    with rows_path.open("wb") as out:
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
    bucket.unlink()
    return rows_path, tally


def merge_rows(paths: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """The rows of every (sorted) rows file, in one sorted stream."""
    with ExitStack() as stack:
        streams = [_rows(stack.enter_context(path.open("rb"))) for path in paths]
        yield from heapq.merge(*streams, key=sort_key)


def _rows(handle: BinaryIO) -> Iterator[dict[str, Any]]:
    for raw in handle:
        yield orjson.loads(raw)


def _screened(result: tuple[Path, Tally], tally: Tally) -> Path:
    path, part = result
    tally.add(part)
    return path


def _process_context() -> Any:
    """fork where there is one: workers start at once with the knowledge the parent loaded
    (shared copy-on-write); spawn elsewhere, where each worker loads it on start."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _load(knowledge: KnowledgeFiles) -> None:
    knowledge.load()  # once per worker process; later calls hit the cache
