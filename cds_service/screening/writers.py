"""The screening output: NDJSON rows (for integration engines) or a worklist table (CSV, HTML).

Files are written beside the target and renamed into place, so a run that fails leaves no
half-written worklist behind.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape

from cds_service.cards.templates import unit_text
from cds_service.rules.engine import number

FORMATS = ("ndjson", "csv", "html")
COLUMNS = (
    "urgency", "patient", "cards", "pattern", "setting", "decisive values", "missing",
    "data problems", "summary",
)  # fmt: skip


def write_rows(rows: Iterator[dict[str, Any]], out: Path, fmt: str, as_of: datetime) -> None:
    with _replacing(out) as handle:
        if fmt == "ndjson":
            for row in rows:
                handle.write(orjson.dumps(row) + b"\n")
        elif fmt == "csv":
            _csv(rows, handle)
        elif fmt == "html":
            _html(rows, handle, as_of)
        else:
            raise ValueError(f"unknown format {fmt!r}")


def worklist_cells(row: dict[str, Any]) -> list[str | list[str]]:
    """One worklist line: what a clinician lead reads first, as text (decisive values: a list)."""
    problems = row["problems"]
    return [
        row["urgency"],
        row["patient"],
        ", ".join(row["card_types"]),
        row["pattern"] or "",
        row["setting"] or "",
        decisive_lines(row["decisive_values"]),
        ", ".join(row["missing"]),
        f"{len(problems)}: " + ", ".join(sorted({p["code"] for p in problems})) if problems else "",
        row["cards"][0]["summary"],
    ]


def decisive_lines(values: list[dict[str, Any]]) -> list[str]:
    """One line per result with every criterion it met: "Ferritin 12,500 ng/mL (> 4,420; ≥ 500)"."""
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for value in values:
        key = (value["analyte"], value["value"], value["unit"], value["effective"])
        grouped.setdefault(key, []).append(value)
    lines = []
    for same in grouped.values():
        first = same[0]
        label = min((v["label"] for v in same), key=len)
        shown = f"{first['comparator'] or ''}{number(first['value'])} {unit_text(first['unit'])}"
        criteria = "; ".join(unit_text(v["criterion"]) for v in same if v["criterion"])
        lines.append(f"{label} {shown}" + (f" ({criteria})" if criteria else ""))
    return lines


def _csv(rows: Iterator[dict[str, Any]], handle: IO[bytes]) -> None:
    import io

    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            ["; ".join(cell) if isinstance(cell, list) else cell for cell in worklist_cells(row)]
        )
    text.flush()
    text.detach()


def _html(rows: Iterator[dict[str, Any]], handle: IO[bytes], as_of: datetime) -> None:
    environment = Environment(
        loader=PackageLoader("cds_service.screening", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = environment.get_template("worklist.html.j2")
    stamp = as_of.isoformat().replace("+00:00", "Z")
    lines = ((row, worklist_cells(row)) for row in rows)
    for chunk in template.generate(columns=COLUMNS, lines=lines, as_of=stamp):
        handle.write(chunk.encode("utf-8"))


@contextmanager
def _replacing(out: Path) -> Iterator[IO[bytes]]:
    partial = out.with_name(f".{out.name}.partial")
    try:
        with partial.open("wb") as handle:
            yield handle
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
