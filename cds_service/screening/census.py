"""Synthetic censuses for the screening tests and benchmark, as a Bulk Data export folder.

N patients with about ten resources each (a Patient and nine routine results, all in their
normal ranges, so none of them is due a card), plus planted cases: patient Bundles (the fixture
patients, one per setting and pattern) copied in under new ids with their dates moved to the
census time. Everything is drawn from a seeded generator: the same arguments give the same files.
`planted.json` beside the NDJSON files names the planted patients (screening reads only NDJSON).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

import orjson

from cds_service.demo import FIXTURE_TIME, shift_dates
from cds_service.evidence.bundles import entry_resources

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# (LOINC, display, UCUM unit, normal low, normal high, category): each healthy patient gets one.
ROUTINE = (
    ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 0.5, 8, "laboratory"),
    ("2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "ng/mL", 30, 300, "laboratory"),
    ("8310-5", "Body temperature", "Cel", 36.3, 37.4, "vital-signs"),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 160, 380,
     "laboratory"),
    ("731-0", "Lymphocytes [#/volume] in Blood by Automated count", "10*3/uL", 1.2, 3,
     "laboratory"),
    ("751-8", "Neutrophils [#/volume] in Blood by Automated count", "10*3/uL", 2, 7, "laboratory"),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.5, 16, "laboratory"),
    ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L",
     12, 35, "laboratory"),
    ("3255-7", "Fibrinogen [Mass/volume] in Platelet poor plasma by Coagulation assay", "mg/dL",
     220, 400, "laboratory"),
)  # fmt: skip


@dataclass(frozen=True)
class CensusSpec:
    patients: int  # healthy patients
    as_of: datetime
    planted: Sequence[Path] = ()  # patient Bundle files to plant, one patient each
    seed: int = 0
    lines_per_file: int | None = None  # split each type's file after this many lines
    gzip: bool = False


def write_census(spec: CensusSpec, folder: Path) -> dict[str, str]:
    """Write the census into `folder`; returns the planted patients (id -> Bundle file stem)."""
    folder.mkdir(parents=True, exist_ok=True)
    planted = {_planted_id(path): path for path in spec.planted}
    # Planted patients are spread through the census, so they land in different buckets.
    slots = {
        (index + 1) * spec.patients // (len(planted) + 1): pid for index, pid in enumerate(planted)
    }
    random_ = random.Random(spec.seed)  # noqa: S311 (synthetic data, not security)
    with _Writer(folder, spec.lines_per_file, spec.gzip) as writer:
        for number in range(spec.patients + 1):
            if number in slots:
                pid = slots[number]
                for resource in _planted(planted[pid], pid, spec.as_of):
                    writer.write(resource)
            if number < spec.patients:
                for resource in healthy_patient(f"census-{number:07d}", spec.as_of, random_):
                    writer.write(resource)
    names = {pid: path.stem for pid, path in planted.items()}
    manifest = {"as_of": spec.as_of.isoformat(), "patients": spec.patients, "planted": names}
    (folder / "planted.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return names


def healthy_patient(pid: str, as_of: datetime, random_: random.Random) -> Iterator[dict[str, Any]]:
    yield {
        "resourceType": "Patient",
        "id": pid,
        "gender": random_.choice(("female", "male")),
        "birthDate": f"{random_.randint(1935, 2005)}-{random_.randint(1, 12):02d}-15",
    }
    for index, (code, display, unit, low, high, category) in enumerate(ROUTINE):
        taken = as_of - timedelta(hours=random_.randint(2, 40), minutes=random_.randint(0, 59))
        yield {
            "resourceType": "Observation",
            "id": f"{pid}-{index}",
            "status": "final",
            "category": [{"coding": [{"system": _CATEGORY, "code": category}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": taken.isoformat().replace("+00:00", "Z"),
            "valueQuantity": {
                "value": round(random_.uniform(low, high), 1),
                "unit": unit,
                "system": UCUM,
                "code": unit,
            },
        }


def _planted_id(path: Path) -> str:
    return f"planted-{path.stem}"


def _planted(path: Path, pid: str, as_of: datetime) -> list[dict[str, Any]]:
    """The Bundle's resources under the new patient id, dated relative to `as_of`."""
    resources = entry_resources(json.loads(path.read_text(encoding="utf-8")))
    patients = [r["id"] for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise ValueError(f"{path.name}: a planted Bundle must hold exactly one Patient")
    text = json.dumps(shift_dates(resources, as_of - FIXTURE_TIME))
    renamed: list[dict[str, Any]] = json.loads(text.replace(patients[0], pid))
    return renamed


class _Writer:
    """One NDJSON file per resource type, rotated after `lines_per_file` lines."""

    def __init__(self, folder: Path, lines_per_file: int | None, compress: bool) -> None:
        self.folder = folder
        self.limit = lines_per_file
        self.compress = compress
        self.stack = ExitStack()
        self.files: dict[str, tuple[IO[bytes], int, int]] = {}  # type -> (handle, part, lines)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def write(self, resource: dict[str, Any]) -> None:
        kind = resource["resourceType"]
        handle, part, lines = self.files.get(kind) or (self._open(kind, 1), 1, 0)
        if self.limit is not None and lines >= self.limit:
            handle.close()
            part, lines = part + 1, 0
            handle = self._open(kind, part)
        handle.write(orjson.dumps(resource) + b"\n")
        self.files[kind] = (handle, part, lines + 1)

    def _open(self, kind: str, part: int) -> IO[bytes]:
        name = f"{kind}.ndjson" if part == 1 else f"{kind}.{part}.ndjson"
        path = self.folder / name
        if self.compress:
            gz_path = path.with_name(name + ".gz")
            compressed = self.stack.enter_context(gzip.open(gz_path, "wb", 1))  # noqa: SIM115
            return cast(IO[bytes], compressed)
        return self.stack.enter_context(path.open("wb"))
