"""Reading a client's FHIR server within the hook's time budget, without ever raising.

`FhirClient.fetch_queries` runs its tasks concurrently (each a search and its `next` pages, or
one read; a task answers one prefetch key, or several: see search_merge) and reports, per task,
the resources read or why they could not be read.

Safety rules, each enforced here for every request:
- every URL, including `next` links, must stay on the request's (already allowed) FHIR base, and is
  checked on the prepared request, i.e. exactly what will be sent;
- requests go straight to a pooled `requests` HTTPAdapter, not through a Session: so no redirect
  is followed (a redirect could lead the token to another host), no cookie is kept between
  requests, and the environment's proxies and .netrc credentials never apply;
- the access token goes only into that request's Authorization header: never onto anything
  shared, into a log line or into a failure text;
- one overall deadline: each request's timeouts are capped by what remains of it, bodies are read
  in slices so a slow trickle cannot hold a thread past it, and retries (GET only, after a refused
  or reset connection or a 503) happen only when the deadline leaves room.

The connection pool and thread pool are created lazily in each process: gunicorn forks workers after
the app is built, and neither sockets nor threads survive a fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

import orjson
import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from cds_service.evidence.bundles import read_bundle
from cds_service.evidence.models import DataProblem
from cds_service.urls import FhirBase

log = logging.getLogger(__name__)
# urllib3 logs every request path (with patient ids) at DEBUG; keep it out of our logs.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)

FailureKind = Literal[
    "timeout",
    "unreachable",
    "tls-error",
    "http-401",
    "http-403",
    "http-4xx",
    "http-5xx",
    "redirect-refused",
    "not-json",
    "not-fhir",
    "too-large",
    "too-many-pages",
    "off-base-url",
    "internal-error",
]

_ACCEPT = "application/fhir+json, application/json;q=0.9"
_USER_AGENT = "cytokine-cds"
_READ_SLICE = 64 * 1024
_RETRY_BACKOFF = 0.05  # seconds before the first retry; doubled for each further one
_MAX_PARALLEL = 16  # concurrent FHIR requests per process (thread pool and connection pool)
_GRACE = 0.05  # seconds past the deadline to let running tasks report their own timeout


@dataclass(frozen=True)
class FetchTask:
    """What to read for one prefetch key: a filled template relative to the FHIR base
    (`Observation?patient=...`, `Patient/123`) or an absolute `next` link to continue a search.

    `searches`: how many searches of the plan this task stands for (see search_merge); its page
    limit is that many times the setting's, the limit the separate searches would have had."""

    key: str
    url: str
    searches: int = 1

    @property
    def is_continuation(self) -> bool:
        return self.url.lower().startswith(("http://", "https://"))

    @property
    def is_read(self) -> bool:
        """A `Type/id` read: its 404 means "no such resource", the same as a null prefetch."""
        if self.is_continuation or "?" in self.url:
            return False
        parts = self.url.strip("/").split("/")
        return len(parts) == 2 and parts[0][:1].isupper()


@dataclass(frozen=True)
class FetchFailure:
    """Why (part of) a key could not be read. `detail` is safe to show: no token, no patient id."""

    kind: FailureKind
    detail: str
    status: int | None = None


@dataclass(frozen=True)
class KeyFetch:
    """What was read for one key: all resources of all pages read, and the failure if any.

    A failure after some pages leaves their resources here: the key is then partly read.
    OperationOutcome entries of the pages are `problems`, not resources."""

    key: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    failure: FetchFailure | None = None
    problems: list[DataProblem] = field(default_factory=list)
    not_found: bool = False  # a read answered 404 or 410: no such resource

    @property
    def complete(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class FetchResult:
    keys: dict[str, KeyFetch]
    elapsed: float

    @property
    def resources(self) -> list[dict[str, Any]]:
        return [resource for fetch in self.keys.values() for resource in fetch.resources]

    @property
    def problems(self) -> list[DataProblem]:
        return [problem for fetch in self.keys.values() for problem in fetch.problems]

    @property
    def failures(self) -> dict[str, FetchFailure]:
        return {key: f.failure for key, f in self.keys.items() if f.failure is not None}


@dataclass(frozen=True)
class FetchLimits:
    request_timeout: float = 1.5
    max_pages: int = 5
    retries: int = 1
    max_response_bytes: int = 10 * 1024 * 1024
    ca_bundle: Path | None = None


class FhirClient:
    """One per app; the connection pool and thread pool behind it are made once per process."""

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._adapter: HTTPAdapter | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._verify: str | bool = str(limits.ca_bundle) if limits.ca_bundle else True

    def fetch_queries(
        self, plan: Sequence[FetchTask], server: FhirBase, token: str | None, deadline: float
    ) -> FetchResult:
        """Run `plan` against `server` until `deadline` (a time.monotonic() value).

        Never raises: every key of the plan is in the result, read or with its failure."""
        started = time.monotonic()
        adapter, executor = self._resources()
        futures: dict[Future[KeyFetch], FetchTask] = {
            executor.submit(self._fetch_key, adapter, task, server, token, deadline): task
            for task in plan
        }
        done, _ = wait(futures, timeout=max(0.0, deadline - time.monotonic()) + _GRACE)
        results: dict[str, KeyFetch] = {}
        for future, task in futures.items():
            if future in done and future.exception() is None:
                results[task.key] = future.result()
            elif future in done:
                log.error("FHIR fetch task failed: %s", type(future.exception()).__name__)
                results[task.key] = KeyFetch(task.key, failure=_INTERNAL)
            else:
                future.cancel()
                results[task.key] = KeyFetch(task.key, failure=_TIMEOUT)
        result = FetchResult(results, time.monotonic() - started)
        _log_result(server, result)
        return result

    def close(self) -> None:
        """Release the pooled connections and threads (tests; process exit does it anyway)."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            if self._adapter is not None:
                self._adapter.close()
            self._pid, self._adapter, self._executor = None, None, None

    def _resources(self) -> tuple[HTTPAdapter, ThreadPoolExecutor]:
        pid = os.getpid()
        with self._lock:
            if self._pid != pid or self._adapter is None or self._executor is None:
                self._adapter = HTTPAdapter(pool_maxsize=_MAX_PARALLEL, max_retries=0)
                self._executor = ThreadPoolExecutor(_MAX_PARALLEL, thread_name_prefix="fhir")
                self._pid = pid
            return self._adapter, self._executor

    def _fetch_key(
        self,
        adapter: HTTPAdapter,
        task: FetchTask,
        server: FhirBase,
        token: str | None,
        deadline: float,
    ) -> KeyFetch:
        url = task.url if task.is_continuation else f"{server.url}/{task.url.lstrip('/')}"
        resources: list[dict[str, Any]] = []
        problems: list[DataProblem] = []
        pages = 0
        while True:
            outcome = self._get_json(adapter, url, server, token, deadline)
            if isinstance(outcome, FetchFailure):
                if task.is_read and outcome.status in (404, 410):
                    return KeyFetch(task.key, not_found=True)  # read: nothing there
                return KeyFetch(task.key, resources, pages, outcome, problems)
            pages += 1
            if task.is_read:
                expected = task.url.strip("/").split("/")[0]
                if outcome.get("resourceType") != expected:
                    return KeyFetch(task.key, [], pages, _not_fhir(f"a {expected} resource"))
                return KeyFetch(task.key, [outcome], pages)
            if outcome.get("resourceType") != "Bundle":
                failure = _not_fhir("a search Bundle")
                return KeyFetch(task.key, resources, pages, failure, problems)
            page = read_bundle(outcome, f"fetch:{task.key}")
            resources.extend(page.resources)
            problems.extend(page.problems)
            next_link = page.next_url
            if next_link is None:
                return KeyFetch(task.key, resources, pages, problems=problems)
            if pages >= self.limits.max_pages * task.searches:
                failure = FetchFailure(
                    "too-many-pages",
                    f"more results than {pages} pages; only those were read "
                    "(setting CYTOKINE_CDS_FHIR_MAX_PAGES, per search)",
                )
                return KeyFetch(task.key, resources, pages, failure, problems)
            # FHIR links are absolute; a relative one is read against the base, leniently.
            url = urljoin(f"{server.url}/", next_link)

    def _get_json(
        self,
        adapter: HTTPAdapter,
        url: str,
        server: FhirBase,
        token: str | None,
        deadline: float,
    ) -> dict[str, Any] | FetchFailure:
        headers = {"Accept": _ACCEPT, "User-Agent": _USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            prepared = requests.Request("GET", url, headers=headers).prepare()
        except (requests.RequestException, ValueError):
            return _OFF_BASE
        if prepared.url is None or not server.owns(prepared.url):
            return _OFF_BASE
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _TIMEOUT
            wait_limit = min(self.limits.request_timeout, remaining)
            retry_after: float | None = None
            try:
                response = adapter.send(
                    prepared,
                    stream=True,
                    timeout=(wait_limit, wait_limit),
                    verify=self._verify,
                    proxies={},
                )
            except requests.exceptions.SSLError:
                return FetchFailure(
                    "tls-error", "the FHIR server's TLS certificate could not be verified"
                )
            except requests.Timeout:
                return _TIMEOUT
            except requests.ConnectionError:
                failure = FetchFailure("unreachable", "the FHIR server could not be reached")
            except requests.RequestException:
                return FetchFailure("unreachable", "the request to the FHIR server failed")
            else:
                with response:
                    if response.status_code != 503:
                        return self._read_response(response, token, deadline)
                    failure = _status_failure(503, token)
                    retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            pause = max(_RETRY_BACKOFF * 2**attempt, retry_after or 0.0)
            if attempt >= self.limits.retries or time.monotonic() + pause >= deadline:
                return failure
            attempt += 1
            time.sleep(pause)

    def _read_response(
        self, response: requests.Response, token: str | None, deadline: float
    ) -> dict[str, Any] | FetchFailure:
        status = response.status_code
        if 300 <= status < 400:
            return FetchFailure(
                "redirect-refused",
                f"the FHIR server answered with a redirect (HTTP {status}), "
                "which the service does not follow",
                status,
            )
        if not 200 <= status < 300:
            return _status_failure(status, token)
        body = _read_body(response, self.limits.max_response_bytes, deadline)
        if isinstance(body, FetchFailure):
            return body
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return FetchFailure("not-json", "the FHIR server's answer was not JSON", status)
        if not isinstance(parsed, dict):
            return _not_fhir("a FHIR resource")
        return parsed


_OFF_BASE = FetchFailure(
    "off-base-url", "a query or next-page link leads outside fhirServer; it was not fetched"
)
_INTERNAL = FetchFailure("internal-error", "an internal error stopped the read")


_TIMEOUT = FetchFailure(
    "timeout",
    "the FHIR server did not answer in time (settings CYTOKINE_CDS_FHIR_DEADLINE_SECONDS, "
    "CYTOKINE_CDS_FHIR_REQUEST_TIMEOUT_SECONDS)",
)


def _not_fhir(expected: str) -> FetchFailure:
    return FetchFailure("not-fhir", f"the FHIR server's answer was not {expected}")


def _status_failure(status: int, token: str | None) -> FetchFailure:
    if status == 401:
        detail = (
            "the FHIR server refused the access token (HTTP 401)"
            if token
            else "the FHIR server requires an access token (HTTP 401) and the request carried "
            "no fhirAuthorization"
        )
        return FetchFailure("http-401", detail, status)
    if status == 403:
        return FetchFailure("http-403", "the FHIR server denied access (HTTP 403)", status)
    if 500 <= status < 600:
        return FetchFailure("http-5xx", f"the FHIR server failed (HTTP {status})", status)
    return FetchFailure("http-4xx", f"the FHIR server refused the query (HTTP {status})", status)


def _retry_after_seconds(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _read_body(response: requests.Response, limit: int, deadline: float) -> bytes | FetchFailure:
    too_large = FetchFailure(
        "too-large",
        f"the FHIR server's answer was larger than {limit} bytes "
        "(setting CYTOKINE_CDS_FHIR_MAX_RESPONSE_BYTES)",
        response.status_code,
    )
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        return too_large
    body = bytearray()
    try:
        while True:
            if time.monotonic() >= deadline:
                return _TIMEOUT
            # read1 returns what one socket read brings, so a trickle cannot outlast the deadline.
            chunk = response.raw.read1(_READ_SLICE, decode_content=True)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > limit:
                return too_large
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
        return _TIMEOUT
    except (urllib3.exceptions.HTTPError, OSError):
        return FetchFailure("unreachable", "the FHIR server's answer broke off")


def _log_result(server: FhirBase, result: FetchResult) -> None:
    # Server base, keys, page counts and failure kinds only: URLs carry patient ids.
    summary = ", ".join(_key_summary(fetch) for fetch in result.keys.values())
    log.info("FHIR reads from %s in %.3f s: %s", server.url, result.elapsed, summary)


def _key_summary(fetch: KeyFetch) -> str:
    state = fetch.failure.kind if fetch.failure else "ok"
    return f"{fetch.key}={state} ({fetch.pages} pages, {len(fetch.resources)} resources)"
