"""The Spark engine: the same screening on Apache Spark (PySpark), for censuses one machine
cannot screen in time. Needs the optional extra `cytokine-cds[spark]` and a Java runtime.

Spark reads the NDJSON files (gzip by extension, split files as separate inputs), numbers their
lines, groups them by patient, and each group is screened by the same `screen_patient` as the
local engine, so both write the same rows in the same order. The session comes from spark-submit
when run under it, else from `--spark-master` / SPARK_MASTER, else it is local on this machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

from cds_service.screening.decide import KnowledgeFiles
from cds_service.screening.evaluate import Tally, screen_patient, sort_key
from cds_service.screening.local import BUCKET_BYTES, Job, RowSink
from cds_service.screening.source import Line, check_head, parse_line, patient_of

_Item = tuple[str, int, bytes]  # file name, line number, raw line


class SparkUnavailable(Exception):
    """PySpark is not installed (the `spark` extra)."""


def run_spark(job: Job, write_rows: RowSink, master: str | None = None) -> Tally:
    try:
        from pyspark import StorageLevel
    except ImportError:
        raise SparkUnavailable(
            "--engine spark needs PySpark: pip install 'cytokine-cds[spark]'"
        ) from None
    for file in job.files:
        check_head(file)  # a file that is not NDJSON stops the run here, named, as locally
    session, owned = _session(master, job.workers)
    try:
        context = session.sparkContext
        inputs = [
            context.textFile(str(file.path), use_unicode=False)
            .zipWithIndex()
            .map(partial(_numbered, file.name))
            for file in job.files
        ]
        size = sum(file.path.stat().st_size for file in job.files)
        partitions = max(context.defaultParallelism, size // (8 * BUCKET_BYTES) + 1)
        screened = (
            context.union(inputs)
            .filter(lambda item: item[2] != b"")
            .map(_keyed)
            .groupByKey(partitions)
            .mapPartitions(partial(_screen_partition, job.as_of, job.knowledge))
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        tally = Tally()
        for part in screened.filter(lambda kind: kind[0] == "tally").values().collect():
            tally.add(part)
        rows = (
            screened.filter(lambda kind: kind[0] == "row")
            .map(lambda kind: (sort_key(kind[1]), kind[1]))
            .sortByKey()
            .values()
        )
        write_rows(rows.toLocalIterator())  # one partition at a time on the driver
        screened.unpersist()
        return tally
    finally:
        if owned:
            session.stop()


def _session(master: str | None, workers: int) -> tuple[Any, bool]:
    """The active session (tests, notebooks), or a new one this run owns and stops."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    builder = SparkSession.builder.appName("cytokine-cds screen")
    master = master or os.environ.get("SPARK_MASTER")
    if master:
        builder = builder.master(master)
    elif "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit: this machine
        builder = builder.master(f"local[{max(workers, 1)}]")
        # On one machine Spark needs no network: keep the driver on loopback.
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1")
        # Local Python workers must be this interpreter, which has cytokine-cds installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session, True


def _numbered(file: str, numbered: tuple[bytes, int]) -> _Item:
    raw, index = numbered
    return file, index + 1, raw.strip()


def _keyed(item: _Item) -> tuple[str | None, _Item]:
    file, number, raw = item
    return patient_of(Line(file, number, raw, parse_line(raw))), item


def _screen_partition(
    as_of: datetime, knowledge: KnowledgeFiles, groups: Iterable[tuple[str | None, Iterable[_Item]]]
) -> Iterator[tuple[str, Any]]:
    """Screen each patient's group; the partition's counts come last, as ("tally", Tally)."""
    tally = Tally()
    for patient, items in groups:
        lines = [Line(file, number, raw, parse_line(raw)) for file, number, raw in items]
        if patient is None:
            for line in sorted(lines, key=lambda line: (line.file, line.number)):
                tally.note_unattributed(line)
            continue
        row = screen_patient(knowledge, patient, lines, as_of, tally)
        if row is not None:
            yield "row", row
    yield "tally", tally
