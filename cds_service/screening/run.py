"""A screening run: export folder (or a server to export from) -> worklist file and summary."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cds_service.screening.decide import KnowledgeFiles
from cds_service.screening.evaluate import Tally
from cds_service.screening.local import Job, Progress, run_local
from cds_service.screening.source import export_files
from cds_service.screening.writers import write_rows

Engine = Literal["local", "spark"]


@dataclass(frozen=True)
class Screening:
    source: str  # the export folder; with Spark also a Hadoop URI (hdfs://, s3a://, file:/)
    out: Path
    fmt: str
    as_of: datetime
    engine: Engine
    workers: int
    knowledge: KnowledgeFiles
    spark_master: str | None = None
    work_dir: Path | None = None  # the local engine's buckets; None: the system's temporary folder


@dataclass(frozen=True)
class Summary:
    tally: Tally
    seconds: float
    engine: Engine
    workers: int

    def lines(self) -> list[str]:
        tally = self.tally
        rate = tally.patients / self.seconds if self.seconds > 0 else 0.0
        found = ", ".join(f"{kind} {n}" for kind, n in sorted(tally.cards.items())) or "none"
        text = [
            f"screened {tally.patients} patients ({tally.lines} lines) in {self.seconds:.1f} s "
            f"({rate:.0f} patients/s; engine {self.engine}, {self.workers} "
            f"worker{'' if self.workers == 1 else 's'})",
            f"listed {tally.listed} patients with a card ({found}); "
            f"{tally.patients - tally.listed} without a card (not written)",
        ]
        if tally.problems:
            codes = ", ".join(f"{code} {n}" for code, n in sorted(tally.problems.items()))
            text.append(
                f"data problems: {sum(tally.problems.values())} in "
                f"{tally.patients_with_problems} patients ({codes})"
            )
        else:
            text.append("data problems: none")
        if tally.malformed_lines:
            text.append(f"malformed lines skipped: {tally.malformed_lines}")
        if tally.unattributed:
            examples = ", ".join(tally.unattributed_examples)
            text.append(
                f"lines naming no patient (not screened): {tally.unattributed} (e.g. {examples})"
            )
        return text


def run(screening: Screening, progress: Progress) -> Summary:
    """Screen the export folder into `screening.out`. Raises SourceError for unusable input."""
    started = time.monotonic()

    def sink(rows: Iterator[dict[str, Any]]) -> None:
        write_rows(rows, screening.out, screening.fmt, screening.as_of)

    if screening.engine == "spark":
        from cds_service.screening.spark import SparkJob, run_spark

        job = SparkJob(
            screening.source,
            screening.as_of,
            screening.knowledge,
            screening.workers,
            screening.spark_master,
        )
        tally = run_spark(job, sink)
    else:
        files = export_files(Path(screening.source))
        local = Job(files, screening.as_of, screening.knowledge, screening.workers)
        with tempfile.TemporaryDirectory(
            prefix="cytokine-screen-", dir=screening.work_dir
        ) as workdir:
            tally = run_local(local, Path(workdir), sink, progress)
    return Summary(tally, time.monotonic() - started, screening.engine, screening.workers)
