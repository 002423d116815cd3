"""Reading a FHIR Bulk Data export folder: NDJSON files, one resource per line, by patient.

A `$export` writes one resource type per file (`Observation.ndjson`, `Observation.2.ndjson`,
optionally gzip-compressed as `.ndjson.gz`). Lines are read one at a time, so an export larger
than memory streams through. Reading is lenient line by line (a malformed line becomes a data
problem of the patient it names) and strict about files: a folder without NDJSON files, a file
that cannot be read, or a file that is not NDJSON at all stops the run with the file and line.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz")
# A file is taken for something else than NDJSON (a pretty-printed Bundle, a CSV) when this many
# of its first non-blank lines are all unreadable; a single bad line is the patient's problem.
NOT_NDJSON_AFTER = 3

_REFERENCE = re.compile(r"(?:^|/)Patient/([^/\s]+)(?:/_history/[^/]+)?$")
# What a malformed line may still say about its patient (a reference, or the Patient's own id).
_RAW_REFERENCE = re.compile(rb'"reference"\s*:\s*"(?:[^"]*/)?Patient/([A-Za-z0-9\-.]{1,64})"')
_RAW_PATIENT_ID = re.compile(rb'"id"\s*:\s*"([A-Za-z0-9\-.]{1,64})"')
# Where a resource names the patient it is about (Patient compartment, the types the rules read).
_PATIENT_FIELDS = ("subject", "patient")


class SourceError(Exception):
    """The export cannot be screened; the message names the file (and line) and why."""


@dataclass(frozen=True, slots=True)
class ExportFile:
    path: Path
    resource_type: str  # from the file name: "Observation" for Observation.2.ndjson.gz

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an export file: the raw bytes, and the resource if they parse as one."""

    file: str  # file name (no folder: it is shown to people and written into data problems)
    number: int  # 1-based
    raw: bytes
    resource: dict[str, Any] | None  # None: not a FHIR resource in JSON

    @property
    def where(self) -> str:
        return f"{self.file} line {self.number}"


def export_files(folder: Path) -> list[ExportFile]:
    """The NDJSON files of an export folder, in a stable order (by type, then name)."""
    if not folder.exists():
        raise SourceError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder (expected a Bulk Data export folder)")
    found = [
        ExportFile(path, path.name.split(".", 1)[0])
        for path in folder.iterdir()
        if path.is_file() and path.name.endswith(NDJSON_SUFFIXES)
    ]
    if not found:
        raise no_ndjson(str(folder))
    return sorted(found, key=lambda f: export_order(f.name))


def no_ndjson(folder: str) -> SourceError:
    return SourceError(f"{folder}: no NDJSON files (*.ndjson, *.ndjson.gz) in this folder")


def export_order(name: str) -> tuple[str, int, str]:
    """By type, then Observation.ndjson before Observation.2.ndjson before Observation.10..."""
    parts = name.split(".")
    number = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 1
    return parts[0], number, name


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """The resource on one line, or None when the line is not a JSON object with a resourceType."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return value
    return None


def read_lines(file: ExportFile) -> Iterator[Line]:
    """Every non-blank line of `file`, parsed. Raises SourceError for an unreadable file."""
    number = 0
    leading_bad: list[Line] = []  # bad lines before the first good one
    seen_good = False
    try:
        with _open(file.path) as handle:
            for number, raw_line in enumerate(handle, start=1):
                raw = raw_line.strip()
                if not raw:
                    continue
                line = Line(file.name, number, raw, parse_line(raw))
                if seen_good:
                    yield line
                elif line.resource is not None:
                    seen_good = True
                    yield from leading_bad
                    yield line
                else:
                    leading_bad.append(line)
                    if len(leading_bad) >= NOT_NDJSON_AFTER:
                        raise _not_ndjson(leading_bad[0])
    except gzip.BadGzipFile as exc:
        raise SourceError(f"{file.name} line {number + 1}: broken gzip data ({exc})") from None
    except OSError as exc:
        raise SourceError(
            f"{file.name} line {number + 1}: cannot be read ({exc.strerror or exc})"
        ) from None
    except (EOFError, zlib.error) as exc:
        raise SourceError(f"{file.name} line {number + 1}: broken gzip data ({exc})") from None
    if leading_bad:
        raise _not_ndjson(leading_bad[0])


def check_head(file: ExportFile) -> None:
    """Read only as far as the first resource: a cheap check of a file (the Spark driver's)."""
    for _ in read_lines(file):
        return


def check_head_lines(head: list[Line]) -> None:
    """The same check on a file's first non-blank lines, read elsewhere (Spark, from a URI)."""
    if head and all(line.resource is None for line in head):
        raise _not_ndjson(head[0])


def _open(path: Path) -> Any:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _not_ndjson(first: Line) -> SourceError:
    return SourceError(
        f"{first.where}: not NDJSON (expected one FHIR resource as a JSON object per line, "
        f"and none of the first {NOT_NDJSON_AFTER} non-blank lines is one)"
    )


def patient_of(line: Line) -> str | None:
    """The id of the patient a line is about: a Patient's id, or the patient it references.

    A malformed line is searched for a Patient reference (or, in a Patient file, an id), so that
    its problem is reported with the patient it most likely belongs to.
    """
    resource = line.resource
    if resource is None:
        found = _RAW_REFERENCE.search(line.raw)
        if found is None and line.file.startswith("Patient."):
            found = _RAW_PATIENT_ID.search(line.raw)
        return found.group(1).decode("ascii") if found else None
    if resource["resourceType"] == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and rid.strip() else None
    for field in _PATIENT_FIELDS:
        holder = resource.get(field)
        reference = holder.get("reference") if isinstance(holder, dict) else None
        if isinstance(reference, str):
            match = _REFERENCE.search(reference.strip())
            if match:
                return match.group(1)
    return None
