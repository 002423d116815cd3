"""The Spark engine: the same screening on Apache Spark (PySpark), for censuses one machine
cannot screen in time. Needs the optional extra `cytokine-cds[spark]` and a Java runtime.

Spark reads the NDJSON files (gzip by extension, split files as separate inputs), numbers their
lines, groups them by patient, and each group is screened by the same `screen_patient` as the
local engine, so both write the same rows in the same order. The session comes from spark-submit
when run under it, else from `--spark-master` / SPARK_MASTER, else it is local on this machine.
The export is a folder at the same path on the driver and the executors, or a Hadoop URI
(`hdfs://`, `s3a://`, `file:/`) that Spark lists and reads itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from cds_service.screening.decide import KnowledgeFiles
from cds_service.screening.evaluate import Tally, screen_patient, sort_key
from cds_service.screening.local import BUCKET_BYTES, RowSink
from cds_service.screening.source import (
    NDJSON_SUFFIXES,
    NOT_NDJSON_AFTER,
    Line,
    SourceError,
    check_head,
    check_head_lines,
    export_files,
    export_order,
    no_ndjson,
    parse_line,
    patient_of,
)

_Item = tuple[str, int, bytes]  # file name, line number, raw line


class SparkUnavailable(Exception):
    """PySpark is not installed (the `spark` extra)."""


@dataclass(frozen=True)
class SparkJob:
    source: str  # a folder on this machine (or a shared mount), or a Hadoop URI of one
    as_of: datetime
    knowledge: KnowledgeFiles
    workers: int  # local[N] when no master is given
    master: str | None = None


@dataclass(frozen=True)
class _Input:
    name: str  # file name, as in data problems and errors
    path: str  # what Spark reads: an absolute path or a URI
    size: int


def run_spark(job: SparkJob, write_rows: RowSink) -> Tally:
    try:
        from pyspark import StorageLevel
    except ImportError:
        raise SparkUnavailable(
            "--engine spark needs PySpark: pip install 'cytokine-cds[spark]'"
        ) from None
    inputs: list[_Input] = []
    if "://" not in job.source:
        for file in export_files(Path(job.source)):
            check_head(file)  # a file that is not NDJSON stops the run here, named, as locally
            inputs.append(_Input(file.name, str(file.path.absolute()), file.path.stat().st_size))
    session, owned = _session(job.master, job.workers)
    try:
        context = session.sparkContext
        if not inputs:
            inputs = _listed(context, job.source)
        lines = [
            context.textFile(item.path, use_unicode=False)
            .zipWithIndex()
            .map(partial(_numbered, item.name))
            for item in inputs
        ]
        size = sum(item.size for item in inputs)
        partitions = max(context.defaultParallelism, size // (8 * BUCKET_BYTES) + 1)
        screened = (
            context.union(lines)
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


def _listed(context: Any, uri: str) -> list[_Input]:
    """The export files under a Hadoop URI (HDFS, S3, file:), each checked like a local one."""
    from py4j.protocol import Py4JJavaError

    hadoop = context._jvm.org.apache.hadoop.fs
    try:
        folder = hadoop.Path(uri)
        statuses = folder.getFileSystem(context._jsc.hadoopConfiguration()).listStatus(folder)
    except Py4JJavaError as exc:
        problem = exc.java_exception.getClass().getSimpleName()
        raise SourceError(f"{uri}: cannot be listed ({problem})") from None
    found = [
        _Input(status.getPath().getName(), status.getPath().toString(), status.getLen())
        for status in statuses
        if status.isFile() and status.getPath().getName().endswith(NDJSON_SUFFIXES)
    ]
    if not found:
        raise no_ndjson(uri)
    found.sort(key=lambda item: export_order(item.name))
    for item in found:
        head = (
            context.textFile(item.path, use_unicode=False)
            .zipWithIndex()
            .map(partial(_numbered, item.name))
            .filter(lambda line: line[2] != b"")
            .take(NOT_NDJSON_AFTER)
        )
        check_head_lines([Line(name, n, raw, parse_line(raw)) for name, n, raw in head])
    return found


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
