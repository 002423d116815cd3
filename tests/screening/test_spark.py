"""`cytokine-cds screen --engine spark` in Spark's local mode (local[2]; PySpark and the machine's
Java 17): the same worklist, byte for byte, as the local engine. One Spark session for the module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.screening.conftest import copy_census, screen


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("cytokine-cds tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")  # loopback only
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _counts(stderr: str) -> list[str]:
    """The summary without the timing line."""
    return [line for line in stderr.splitlines() if not line.startswith(("screened", "worklist"))]


def test_spark_and_local_engines_write_the_same_worklist(
    spark: Any, split_gzip_census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_census(split_gzip_census, tmp_path / "census")
    # One more (plain) file: a malformed line of a planted patient, and one naming nobody.
    (folder / "Observation.99.ndjson").write_text(
        '{"resourceType": "Observation", "subject": {"reference": "Patient/census-0000001"}}\n'
        '{"resourceType": "Observation", "subject": {"reference": "Patient/planted-css-mixed"}\n'
        '{"resourceType": "Observation", "status": "final", "subject": {}}}\n',
        encoding="utf-8",
    )
    local = screen(capsys, folder, tmp_path / "local.ndjson", "--workers", "2")
    on_spark = screen(capsys, folder, tmp_path / "spark.ndjson", "--engine", "spark")
    assert local.code == on_spark.code == 0, on_spark.stderr
    assert on_spark.out.read_bytes() == local.out.read_bytes()
    assert _counts(on_spark.stderr) == _counts(local.stderr)
    assert "data problems: 2 in 2 patients (malformed 2)" in on_spark.stderr  # + no code
    assert "lines naming no patient (not screened): 1 (e.g. Observation.99.ndjson line 3)" in (
        on_spark.stderr
    )
    mixed = next(row for row in on_spark.rows() if row["patient"] == "planted-css-mixed")
    assert mixed["problems"][0]["reference"] == "Observation.99.ndjson:2"
    assert "engine spark" in on_spark.stderr


def test_a_file_that_is_not_ndjson_stops_a_spark_run_before_spark_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text("id,name\n1,Ann\n2,Bob\n", encoding="utf-8")
    run = screen(capsys, folder, tmp_path / "out.ndjson", "--engine", "spark")
    assert run.code == 2
    assert "Patient.ndjson line 1: not NDJSON" in run.stderr


def test_a_hadoop_uri_is_listed_and_read_by_spark(
    spark: Any, census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("Patient.ndjson", "Observation.ndjson"):  # two patients' worth of the census
        lines = (census / name).read_text(encoding="utf-8").splitlines()
        kept = [
            line for line in lines if "planted-css-il6-covid" in line or "census-0000002" in line
        ]
        (folder / name).write_text("\n".join(kept) + "\n", encoding="utf-8")
    local = screen(capsys, folder, tmp_path / "local.ndjson", "--workers", "1")
    on_spark = screen(capsys, folder.as_uri(), tmp_path / "spark.ndjson", "--engine", "spark")
    assert local.code == on_spark.code == 0, on_spark.stderr
    assert "screened 2 patients" in on_spark.stderr
    assert on_spark.out.read_bytes() == local.out.read_bytes()
    missing = screen(capsys, (tmp_path / "nowhere").as_uri(), tmp_path / "o", "--engine", "spark")
    assert missing.code == 2
    assert "nowhere: cannot be listed (FileNotFoundException)" in missing.stderr
