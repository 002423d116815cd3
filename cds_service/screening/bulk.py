"""FHIR Bulk Data `$export` client: kick off, poll, download the NDJSON files into a folder.

Every URL it contacts (the kick-off, the status URL the server hands back, each file of the
manifest) passes the same server policy as the hooks' FHIR reads (allowlist; loopback only when
allowed; https unless allowed) before any connection is made. No redirect is followed, no cookie
kept, and the environment's proxies and .netrc do not apply.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from cds_service.fhir.server_policy import ServerPolicy, ServerRefused
from cds_service.urls import FhirBase, parse_base_url

# The resource types the screening reads (labs and the chart around them).
EXPORT_TYPES = (
    "Patient", "Observation", "DiagnosticReport", "Condition", "Procedure",
    "MedicationAdministration", "MedicationRequest", "MedicationStatement", "AllergyIntolerance",
)  # fmt: skip
_ACCEPT_JSON = "application/fhir+json"
_MAX_WAIT = 30.0  # seconds between polls at most, whatever Retry-After says
_CHUNK = 1024 * 1024


class ExportError(Exception):
    """The export could not be run or downloaded; the message says where it stopped."""


class ExportRejected(ExportError):
    """The server refused the export as asked (a 4xx at kick-off: an unknown Group, a type
    it does not export): the request given was wrong, not the server."""


@dataclass(frozen=True)
class ExportRequest:
    server: str  # FHIR base URL
    group: str | None = None  # Group id: Group/{id}/$export; None: system-level $export
    types: Sequence[str] = EXPORT_TYPES
    timeout: float = 3600.0  # seconds for the whole export (kick-off to last file)
    poll_interval: float = 1.0  # seconds, when the server gives no Retry-After
    request_timeout: float = 30.0


@dataclass(frozen=True)
class ExportResult:
    files: list[Path]
    errors: int  # OperationOutcome files listed under `error` in the manifest


def run_export(
    request: ExportRequest,
    policy: ServerPolicy,
    folder: Path,
    on_progress: Callable[[str], None] = lambda _: None,
) -> ExportResult:
    """Run the export into `folder`. Raises ServerRefused (nothing contacted) or ExportError."""
    base = policy.check(request.server)
    deadline = time.monotonic() + request.timeout
    with _session() as session:
        client = _Client(session, base, policy, request.request_timeout)
        status_url = client.kick_off(request)
        manifest = client.poll(status_url, deadline, request.poll_interval, on_progress)
        files = client.download(manifest, folder, deadline, on_progress)
        client.release(status_url)
    errors = manifest.get("error")
    return ExportResult(files, len(errors) if isinstance(errors, list) else 0)


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc credentials from the environment
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


class _Client:
    def __init__(
        self, session: requests.Session, base: FhirBase, policy: ServerPolicy, timeout: float
    ) -> None:
        self.session = session
        self.base = base
        self.policy = policy
        self.timeout = timeout

    def kick_off(self, request: ExportRequest) -> str:
        path = f"Group/{request.group}/$export" if request.group else "$export"
        query = urlencode({"_type": ",".join(request.types)}, safe=",")
        url = f"{self.base.url}/{path}?{query}"
        response = self._get(url, {"Accept": _ACCEPT_JSON, "Prefer": "respond-async"})
        if response.status_code != 202:
            status = response.status_code
            # 429 asks for later, not for another request.
            rejected = HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR and (
                status != HTTPStatus.TOO_MANY_REQUESTS
            )
            error = ExportRejected if rejected else ExportError
            raise error(f"$export kick-off at {self.base.url}: {_refusal(response)}")
        location = response.headers.get("Content-Location")
        if not location:
            raise ExportError(f"$export kick-off at {self.base.url}: 202 without Content-Location")
        return location

    def poll(
        self, status_url: str, deadline: float, interval: float, on_progress: Callable[[str], None]
    ) -> dict[str, Any]:
        while True:
            response = self._get(status_url, {"Accept": _ACCEPT_JSON})
            if response.status_code == 200:
                try:
                    manifest = response.json()
                except ValueError:
                    raise ExportError("$export status: the manifest is not JSON") from None
                if not isinstance(manifest, dict) or not isinstance(manifest.get("output"), list):
                    raise ExportError("$export status: the manifest has no output list")
                return manifest
            if response.status_code not in (202, 429):
                raise ExportError(f"$export status: {_refusal(response)}")
            on_progress(response.headers.get("X-Progress", "in progress"))
            wait = _retry_after(response.headers.get("Retry-After"), interval)
            if time.monotonic() + wait > deadline:
                raise ExportError("$export did not complete within the time allowed (--timeout)")
            time.sleep(wait)

    def download(
        self,
        manifest: dict[str, Any],
        folder: Path,
        deadline: float,
        on_progress: Callable[[str], None],
    ) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        seen: Counter[str] = Counter()
        files = []
        for entry in manifest["output"]:
            url = entry.get("url") if isinstance(entry, dict) else None
            kind = entry.get("type") if isinstance(entry, dict) else None
            if not isinstance(url, str) or not isinstance(kind, str) or not kind.isalpha():
                raise ExportError("$export manifest: an output entry without type and url")
            seen[kind] += 1
            name = f"{kind}.ndjson" if seen[kind] == 1 else f"{kind}.{seen[kind]}.ndjson"
            on_progress(f"downloading {name}")
            files.append(self._save(url, folder / name, deadline))
        return files

    def release(self, status_url: str) -> None:
        """Tell the server the files may go (the spec's DELETE on the status URL); best effort."""
        with contextlib.suppress(ExportError):
            self._request("DELETE", status_url, {}, stream=False).close()

    def _save(self, url: str, target: Path, deadline: float) -> Path:
        response = self._request("GET", url, {"Accept": "application/fhir+ndjson"}, stream=True)
        with response:
            if response.status_code != 200:
                raise ExportError(f"$export file {target.name}: {_refusal(response)}")
            with target.open("wb") as out:
                for chunk in response.iter_content(_CHUNK):
                    out.write(chunk)
                    if time.monotonic() > deadline:
                        raise ExportError(f"$export file {target.name}: time allowed ran out")
        return target

    def _get(self, url: str, headers: dict[str, str]) -> requests.Response:
        return self._request("GET", url, headers, stream=False)

    def _request(
        self, method: str, url: str, headers: dict[str, str], *, stream: bool
    ) -> requests.Response:
        self._check(url)
        try:
            return self.session.request(
                method,
                url,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=stream,
            )
        except requests.RequestException as exc:
            what = type(exc).__name__
            raise ExportError(f"$export: {self.base.url} could not be reached ({what})") from None

    def _check(self, url: str) -> None:
        """Status and file URLs come from the server: they too must pass the policy."""
        if self.base.owns(url):
            return
        try:
            self.policy.check(_origin_and_path(url))
        except ServerRefused as exc:
            raise ExportError(
                f"$export handed out a URL this service may not read: {exc}"
            ) from None


def _origin_and_path(url: str) -> str:
    try:
        return parse_base_url(url.split("?", 1)[0].split("#", 1)[0]).url
    except ValueError:
        return url  # the policy names what is wrong with it


def _retry_after(value: str | None, default: float) -> float:
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        seconds = default  # an HTTP date: poll at the default pace
    return min(max(seconds, 0.1), _MAX_WAIT)


def _refusal(response: requests.Response) -> str:
    """Status and the OperationOutcome's coded issues (its free text may echo ids)."""
    codes: list[str] = []
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = body.get("issue")
        for issue in issues if isinstance(issues, list) else []:
            if isinstance(issue, dict) and isinstance(issue.get("code"), str):
                codes.append(issue["code"])
    detail = f" (OperationOutcome: {', '.join(codes)})" if codes else ""
    return f"HTTP {response.status_code}{detail}"
