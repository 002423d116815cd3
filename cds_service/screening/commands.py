"""`cytokine-cds screen` and `cytokine-cds synth-census`: population screening on the command line.

Exit codes as for every command: 0 done, 2 bad input (named, with file and line) or configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds_service.cards.resources import PanelCode
from cds_service.cards.templates import default_cards_dir
from cds_service.fhir.server_policy import ServerPolicy, ServerRefused
from cds_service.screening.bulk import ExportError, ExportRejected, ExportRequest, run_export
from cds_service.screening.decide import KnowledgeFiles
from cds_service.screening.local import Progress
from cds_service.screening.run import Screening, run
from cds_service.screening.source import SourceError
from cds_service.screening.spark import SparkUnavailable
from cds_service.screening.writers import FORMATS
from cds_service.settings import Settings


class ScreenInputError(Exception):
    """Bad input for a screening command; the CLI prints it and exits with 2."""


class ScreenFailed(Exception):
    """An operational failure (the FHIR server could not be reached or misbehaved); the CLI
    prints it and exits with 1, as for the other commands."""


SettingsFactory = Callable[..., Settings]


def add_commands(
    commands: Any, settings: SettingsFactory, parse_time: Callable[[str], datetime | None]
) -> None:
    screen = commands.add_parser(
        "screen",
        help="screen a census (FHIR Bulk Data NDJSON folder or $export) into a worklist",
        description="Screen every patient of a FHIR Bulk Data export with the same decision "
        "as a patient-view hook call; write one line per patient with at least one card.",
    )
    screen.add_argument(
        "source",
        help="export folder (*.ndjson, *.ndjson.gz), a FHIR base URL to $export from, or with "
        "--engine spark a Hadoop URI of the folder (hdfs://, s3a://, file:/)",
    )
    screen.add_argument("--out", required=True, type=Path, help="output file")
    screen.add_argument(
        "--format", choices=FORMATS, default="ndjson", help="ndjson (default), csv or html"
    )
    screen.add_argument(
        "--as-of", help="time of evaluation, ISO 8601 with zone (default: now)", default="now"
    )
    screen.add_argument("--engine", choices=("local", "spark"), default="local")
    screen.add_argument(
        "--workers", type=_positive, default=os.cpu_count() or 1, help="worker processes (local) "
        "or local Spark cores (default: the number of CPUs)",
    )  # fmt: skip
    screen.add_argument(
        "--spark-master", help="Spark master URL (default: SPARK_MASTER, spark-submit's, or local)"
    )
    screen.add_argument("--group", help="with a server URL: export Group/GROUP, not the system")
    screen.add_argument(
        "--export-timeout", type=float, default=3600.0, help="seconds allowed for the $export"
    )
    screen.add_argument(
        "--work-dir",
        type=Path,
        help="where temporary files go (the download, the buckets; default: the system's)",
    )
    screen.set_defaults(handler=lambda args: _screen(args, settings(), parse_time))

    census = commands.add_parser(
        "synth-census",
        help="write a synthetic census (Bulk Data NDJSON) with planted cases, for tests and bench",
    )
    census.add_argument("folder", type=Path, help="where the NDJSON files go")
    census.add_argument("--patients", type=_positive, default=1000, help="healthy patients")
    census.add_argument(
        "--plant",
        type=Path,
        nargs="*",
        default=None,
        help="patient Bundle files to plant (default: fixtures/patients/css-*.json, if present)",
    )
    census.add_argument(
        "--as-of", default="2026-11-20T12:00:00Z", help="census time (ISO 8601, or now)"
    )
    census.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the healthy patients' random values (the same arguments, the same files)",
    )
    census.add_argument("--lines-per-file", type=_positive, help="split files after N lines")
    census.add_argument("--gzip", action="store_true", help="write .ndjson.gz files")
    census.set_defaults(handler=lambda args: _synth_census(args, parse_time))


def knowledge_files(settings: Settings) -> KnowledgeFiles:
    return KnowledgeFiles(
        settings.local_codes_file,
        settings.rules_file,
        settings.cards_dir or default_cards_dir(),
        PanelCode(
            settings.multiplex_panel_system,
            settings.multiplex_panel_code,
            settings.multiplex_panel_display,
        ),
    )


def _screen(
    args: argparse.Namespace, settings: Settings, parse_time: Callable[[str], datetime | None]
) -> int:
    as_of = parse_time(args.as_of) or datetime.now(UTC)
    _check_out(args.out)  # before hours of screening, not after
    _check_work_dir(args.work_dir)
    exporting = args.source.lower().startswith(("http://", "https://"))
    if "://" in args.source and not exporting and args.engine != "spark":
        raise ScreenInputError(f"{args.source}: a URI other than http(s) needs --engine spark")
    knowledge = knowledge_files(settings)
    knowledge.load()  # a broken knowledge file stops the run before any data is read
    progress = Progress(sys.stderr.isatty())
    # Only an export needs a scratch folder: a folder source is read where it is.
    with (
        tempfile.TemporaryDirectory(prefix="cytokine-export-", dir=args.work_dir)
        if exporting
        else contextlib.nullcontext("")
    ) as scratch:
        source = args.source
        if exporting:
            source = str(_export(args, settings, Path(scratch) / "export"))
        screening = Screening(
            source=source,
            out=args.out,
            fmt=args.format,
            as_of=as_of,
            engine=args.engine,
            workers=args.workers,
            knowledge=knowledge,
            spark_master=args.spark_master,
            work_dir=args.work_dir,
        )
        try:
            summary = run(screening, progress)
        except (SourceError, SparkUnavailable) as exc:
            raise ScreenInputError(str(exc)) from None
    for line in summary.lines():
        print(line, file=sys.stderr)
    print(f"worklist: {args.out} ({args.format})", file=sys.stderr)
    return 0


def _check_out(out: Path) -> None:
    """The worklist can be written where --out says: a file (new or replaced) in a writable
    folder, since it is written next to it and moved into place."""
    problem = None
    if out.is_dir():
        problem = "is a folder; name the worklist file to write"
    elif not out.parent.is_dir():
        problem = f"{out.parent} is not an existing folder"
    elif not os.access(out.parent, os.W_OK | os.X_OK):
        problem = f"the folder {out.parent} is not writable"
    if problem is not None:
        raise ScreenInputError(f"--out {out}: {problem}")


def _check_work_dir(work_dir: Path | None) -> None:
    """The scratch folder exists and is writable (None: the system's temporary one)."""
    if work_dir is None:
        return
    if not work_dir.is_dir():
        raise ScreenInputError(f"--work-dir {work_dir}: is not an existing folder")
    if not os.access(work_dir, os.W_OK | os.X_OK):
        raise ScreenInputError(f"--work-dir {work_dir}: the folder is not writable")


def _export(args: argparse.Namespace, settings: Settings, folder: Path) -> Path:
    policy = ServerPolicy.from_entries(
        settings.fhir_allowlist,
        allow_loopback=settings.fhir_allow_loopback,
        allow_http=settings.fhir_allow_http,
    )
    request = ExportRequest(args.source, group=args.group, timeout=args.export_timeout)
    with Progress(sys.stderr.isatty()).bar("$export", "polls") as bar:
        try:
            result = run_export(request, policy, folder, lambda status: bar.set_postfix_str(status))
        except ServerRefused as exc:
            raise ScreenInputError(exc.message) from None
        except ExportRejected as exc:
            raise ScreenInputError(str(exc)) from None
        except ExportError as exc:
            raise ScreenFailed(str(exc)) from None
    print(f"exported {len(result.files)} files from {args.source}", file=sys.stderr)
    if result.errors:
        print(f"the export listed {result.errors} error files", file=sys.stderr)
    if not result.files:
        raise ScreenInputError(f"{args.source}: the $export produced no files")
    return folder


def _synth_census(args: argparse.Namespace, parse_time: Callable[[str], datetime | None]) -> int:
    from cds_service.screening.census import CensusSpec, write_census

    as_of = parse_time(args.as_of) or datetime.now(UTC)
    plant = args.plant
    if plant is None:
        plant = sorted(Path("fixtures/patients").glob("css-*.json"))
    spec = CensusSpec(args.patients, as_of, plant, args.seed, args.lines_per_file, gzip=args.gzip)
    try:
        planted = write_census(spec, args.folder)
    except (OSError, ValueError) as exc:
        raise ScreenInputError(str(exc)) from None
    print(
        f"wrote {args.patients} healthy and {len(planted)} planted patients to {args.folder}",
        file=sys.stderr,
    )
    return 0


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number
