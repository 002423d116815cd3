"""Uploading the fixture patients (FHIR transaction Bundles) to a FHIR server.

Used by `cytokine-cds load-fixtures`, so that a person can try the service in the CDS Hooks
sandbox against a local or public FHIR R4 server. Every entry must be a PUT with a fixed id, so a
second upload replaces the same resources instead of adding copies.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from cds_service.demo import shift_dates
from cds_service.evidence.bundles import as_list, entry_resources, text_at


class FixtureError(ValueError):
    """A fixture file that is not an uploadable transaction Bundle, or a server URL that is not
    one."""


class UploadFailed(FixtureError):
    """The FHIR server could not be reached or refused an upload."""


@dataclass(frozen=True)
class Uploaded:
    path: Path
    counts: dict[str, int]  # resources per resourceType

    def describe(self) -> str:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))
        return f"{self.path}: {counts}"


def fixture_files(paths: Iterable[Path]) -> list[Path]:
    """The .json files named, with folders expanded (sorted, so uploads are reproducible)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.glob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise FixtureError(f"{path}: no such file or folder")
    if not files:
        raise FixtureError("no fixture files found (*.json)")
    return files


def read_transaction(path: Path) -> dict[str, Any]:
    """The Bundle in `path`, checked to be a transaction of PUTs with fixed ids."""
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FixtureError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FixtureError(f"{path}: not a FHIR Bundle")
    if bundle.get("type") != "transaction":
        raise FixtureError(f"{path}: Bundle.type must be 'transaction'")
    for number, entry in enumerate(as_list(bundle.get("entry")), start=1):
        resource_type = text_at(entry, "resource", "resourceType")
        expected = f"{resource_type}/{text_at(entry, 'resource', 'id')}"
        method, url = text_at(entry, "request", "method"), text_at(entry, "request", "url")
        if resource_type is None or method != "PUT" or url != expected:
            raise FixtureError(
                f"{path}: entry {number} must be 'PUT {expected}' (fixed ids keep uploads "
                "repeatable)"
            )
    return bundle


def upload(
    fhir_server: str,
    paths: Iterable[Path],
    timeout: float = 30.0,
    shift: timedelta | None = None,
) -> Iterator[Uploaded]:
    """POST each fixture Bundle to `fhir_server`; yields one report per file, raises on failure.

    `shift` moves every date-time in the Bundles (as `demo-request` does), so that results dated
    around FIXTURE_TIME are as recent now as they were then."""
    base = fhir_server.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FixtureError(f"--fhir-server {fhir_server}: not an http(s) URL")
    with requests.Session() as session:
        for path in fixture_files(paths):
            bundle = read_transaction(path)
            if shift is not None:
                bundle = shift_dates(bundle, shift)
            try:
                response = session.post(
                    base,
                    data=json.dumps(bundle).encode(),
                    headers={
                        "Content-Type": "application/fhir+json",
                        "Accept": "application/fhir+json",
                    },
                    timeout=timeout,
                )
            except requests.RequestException as exc:
                raise UploadFailed(f"{path}: {base} could not be reached ({exc})") from None
            if response.status_code != 200:
                raise UploadFailed(
                    f"{path}: {base} answered HTTP {response.status_code}: {response.text[:500]}"
                )
            counts = Counter(resource["resourceType"] for resource in entry_resources(bundle))
            yield Uploaded(path, dict(counts))
