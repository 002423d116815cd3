"""Prometheus metrics of the service: one set per process, shared by all workers under gunicorn.

Under gunicorn every worker is its own process, and a scrape reaches one of them. The multiprocess
mode of prometheus-client solves that: each process writes its values to files in a folder named
by the environment variable PROMETHEUS_MULTIPROC_DIR, and /metrics sums the files of all of them.
The library reads that variable when the first metric is created, so:
- `cytokine-cds serve` calls `start_multiprocess_dir()` before it builds the app: a new, empty
  folder per server start (values of an earlier run are never summed in), removed at exit;
- this module imports prometheus_client only inside `metrics()`, which builds the metrics once
  per process, on first use, after that;
- outside `serve` (the Flask test client, the CLI) the metrics live in the process's memory.

Only counters and histograms are used: they sum correctly over processes, also over workers that
have exited (their files stay, so totals never go down while the server runs).

Labels never carry patient data: service ids, card topic codes, status codes, failure kinds.
Every label takes its values from a closed set (what a client sends is mapped to "other"), so no
client can add series: each new label value is a new file entry and a new series per scrape.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "cytokine_cds"
# Hook calls answer in milliseconds from prefetch and within the FHIR deadline (2 s) otherwise.
REQUEST_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FHIR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class Metrics:
    requests: Counter
    request_seconds: Histogram
    cards: Counter
    fhir_fetch_seconds: Histogram
    fhir_fetch_errors: Counter
    auth_failures: Counter
    audit_writes: Counter
    audit_write_failures: Counter
    feedback_write_failures: Counter
    registry: CollectorRegistry  # the metrics of this process (multiprocess: unused by scrapes)


@lru_cache(maxsize=1)
def metrics() -> Metrics:
    """The process's metrics, created on first use (see the module docstring for why)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, values

    _check_mode(values.ValueClass is not values.MutexValue)
    registry = CollectorRegistry(auto_describe=True)

    def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(f"{PREFIX}_{name}", doc, labels, registry=registry)

    return Metrics(
        requests=counter(
            "http_requests",
            "HTTP requests answered, by endpoint, CDS service id (empty outside a service), "
            "method and status code.",
            ("endpoint", "service", "method", "status"),
        ),
        request_seconds=Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time from the request reaching the app to its response, by endpoint, service and "
            "status code.",
            ("endpoint", "service", "status"),
            buckets=REQUEST_BUCKETS,
            registry=registry,
        ),
        cards=counter(
            "cards",
            "Cards returned by hook calls, by service and card topic code.",
            ("service", "topic"),
        ),
        fhir_fetch_seconds=Histogram(
            f"{PREFIX}_fhir_fetch_duration_seconds",
            "Time of the FHIR server reads of one hook call (all keys, concurrently), by outcome: "
            "ok (every key read), partial (some keys failed), failed (no key read).",
            ("outcome",),
            buckets=FHIR_BUCKETS,
            registry=registry,
        ),
        fhir_fetch_errors=counter(
            "fhir_fetch_errors",
            "Prefetch keys that could not (fully) be read from a FHIR server, by failure kind.",
            ("kind",),
        ),
        auth_failures=counter("auth_failures", "CDS client JWTs refused, by reason.", ("reason",)),
        audit_writes=counter("audit_writes", "Hook calls recorded in the audit store."),
        audit_write_failures=counter(
            "audit_write_failures",
            "Hook calls answered but not recorded in the audit store (store down or failing).",
        ),
        feedback_write_failures=counter(
            "feedback_write_failures", "Feedback requests answered 503 because the store failed."
        ),
        registry=registry,
    )


def _check_mode(multiprocess_values: bool) -> None:
    """Fail loudly when multiprocess mode was asked for too late (a wrong sum is worse)."""
    if MULTIPROC_ENV in os.environ and not multiprocess_values:
        raise RuntimeError(
            "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set; "
            "start_multiprocess_dir() must run before anything creates a metric"
        )


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets: every process's values in multiprocess mode, else this one's."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = metrics().registry
    if MULTIPROC_ENV in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


_FOLDER_PREFIX = "cytokine-cds-metrics-"


def start_multiprocess_dir() -> Path:
    """A new, empty folder for this server start, named in PROMETHEUS_MULTIPROC_DIR.

    Must run before the first metric is created (before the app is built). Any folder named
    there before is replaced: the library's own rule is an empty folder at each start. The
    folder's name carries the master's pid, so folders left by a server that was killed
    (SIGKILL leaves no chance to clean up) are removed by the next start.
    """
    remove_abandoned_dirs()
    folder = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def remove_abandoned_dirs() -> None:
    for folder in Path(tempfile.gettempdir()).glob(f"{_FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(_FOLDER_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def process_exited(pid: int) -> None:
    """gunicorn's child_exit hook: the library's bookkeeping for a worker that has exited."""
    if MULTIPROC_ENV in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def remove_multiprocess_dir(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get(MULTIPROC_ENV) == str(folder):
        del os.environ[MULTIPROC_ENV]


# Called where things happen; cheap: a lock and an add.

# The methods a client of this service uses; any other (a client may send any token) is "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"})
_KNOWN_STATUSES = frozenset(str(int(status)) for status in HTTPStatus)
OTHER = "other"


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER


def status_label(status: int) -> str:
    text = str(status)
    return text if text in _KNOWN_STATUSES else OTHER


def record_cards(service: str, topics: Sequence[str]) -> None:
    counter = metrics().cards
    for topic in topics:
        counter.labels(service, topic).inc()


def record_fhir_fetch(seconds: float, failed_kinds: Sequence[str], keys: int) -> None:
    m = metrics()
    outcome = "ok" if not failed_kinds else "failed" if len(failed_kinds) >= keys else "partial"
    m.fhir_fetch_seconds.labels(outcome).observe(seconds)
    for kind in failed_kinds:
        m.fhir_fetch_errors.labels(kind).inc()


def record_auth_failure(reason: str) -> None:
    metrics().auth_failures.labels(reason).inc()


StoreEvent = Literal["audit_writes", "audit_write_failures", "feedback_write_failures"]


def record_store_event(name: StoreEvent) -> None:
    """One of the audit store's counters, by its Metrics field name."""
    counter: Counter = getattr(metrics(), name)
    counter.inc()
