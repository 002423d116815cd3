"""Run the service under gunicorn, the production WSGI server, configured from Settings.

Why these gunicorn settings (README, "Serving, observability and performance", has the numbers):
- `sync` workers, two per core (CYTOKINE_CDS_WORKER_CLASS, CYTOKINE_CDS_WORKERS): the work is
  CPU-bound Python, so processes give the parallelism, and the second worker per core computes
  while another waits on a FHIR server or the database. A sync worker closes the connection after
  each answer, so each call is a new accept() and calls spread evenly over the workers; with
  gthread, keep-alive connections stay with the worker that accepted them and were measured to
  pile up on one worker (p99 near 1 s at concurrency 8 on 2 cores). gthread stays selectable.
- The app is built once in the master (`preload_app`): knowledge files are validated before any
  worker starts, and a broken file stops start-up instead of crash-looping workers. The objects
  built then are moved out of the garbage collector's reach (gc.freeze): a full collection over
  them took ~60 ms, which showed as the 99th-percentile latency; frozen, they also stay shared
  between workers instead of being copied by the collector's writes.
- `timeout` restarts a worker whose main loop hangs; `graceful_timeout` is how long in-flight
  requests get after SIGTERM (a rolling deploy) before the worker is killed.
- Requests gunicorn refuses itself, before the app sees them (a request line or headers over the
  limits: 414, 431; a malformed request line, header or Content-Length: 400; an unsupported
  Transfer-Encoding: 501), are answered with an OperationOutcome like the app's own errors:
  gunicorn writes them through `gunicorn.util.write_error`, which `serve` replaces.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from flask import Flask
from gunicorn import glogging
from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication

from cds_service.api.errors import operation_outcome
from cds_service.observability.logs import configure_logging
from cds_service.observability.metrics import (
    process_exited,
    remove_multiprocess_dir,
    start_multiprocess_dir,
)
from cds_service.settings import Settings
from cds_service.store.checkpoint import stop_checkpointer


class NoAccessLineLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger without its access line. The service writes its own JSON request line
    per call (`observability.logs`) and silences `gunicorn.access`, but gunicorn still builds
    each access line's fields whenever it is given a logging config: ~65 µs per call, measured
    with py-spy on a worker under load, for a line nobody writes."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


def _no_request_line(worker: Any, req: Any) -> None:
    """gunicorn's default pre_request hook logs each method and path at DEBUG; a path may hold
    a patient id or a profile link's token. The app writes its own, redacted access line."""


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """The gunicorn settings proper (the benchmark's baseline app runs under the same)."""
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "worker_class": settings.worker_class,
        # gunicorn turns `sync` into `gthread` when threads > 1: sync means one thread.
        "threads": settings.threads if settings.worker_class == "gthread" else 1,
        "timeout": settings.worker_timeout,
        "graceful_timeout": settings.graceful_timeout,
        "keepalive": settings.keepalive,
        # The app is built (and its knowledge files validated) once, before workers fork.
        "preload_app": True,
        "accesslog": None,
        "logger_class": NoAccessLineLogger,
        "errorlog": "-",
        "pre_request": _no_request_line,
        "loglevel": settings.log_level.lower(),
        "proc_name": "cytokine-cds",
        # gunicorn 24+ opens a control socket in $HOME by default: unused here, it would collide
        # between servers on one machine and fails on a read-only home (containers).
        "control_socket_disable": True,
    }


_OPTIONAL = frozenset({"control_socket_disable"})  # settings only newer gunicorn versions know


class GunicornServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in _OPTIONAL and key not in self.cfg.settings:
                continue
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app


@dataclass(frozen=True)
class ServingProcess:
    """What `serve` set up in the master before the app was built."""

    log_config: dict[str, Any]
    metrics_dir: Path
    master_pid: int


@contextmanager
def serving_process(settings: Settings) -> Iterator[ServingProcess]:
    """Logging and the shared metrics folder, set up before the app is built (its start-up
    messages are logged in the service's format; metrics are created in multiprocess mode).
    The folder is removed when the server stops, by the master only (workers leave through
    here too, as gunicorn's forked children unwind the same stack)."""
    log_config = configure_logging(settings.log_level, settings.log_format)
    prepared = ServingProcess(log_config, start_multiprocess_dir(), os.getpid())
    try:
        yield prepared
    finally:
        if os.getpid() == prepared.master_pid:
            remove_multiprocess_dir(prepared.metrics_dir)


# gunicorn's message names the limit or the part at fault; it is cut so that an answer never
# repeats much of what the client sent.
_MAX_SERVER_MESSAGE = 200


def write_json_error(sock: Any, status: int, reason: str, message: str) -> None:
    """gunicorn's error answer (same status, reason and connection handling) as JSON."""
    text = f"{reason}: {message}" if message else reason
    body = orjson.dumps(operation_outcome(status, text[:_MAX_SERVER_MESSAGE]))
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


# A hook call holds thousands of objects at once (the parsed prefetch alone), nearly all freed
# by reference counting when the call ends. With Python's default threshold (700) the collector
# ran ~3 times per full-prefetch call looking for cycles that are not there, 0.19 ms of a ~4 ms
# call (measured with gc.callbacks over 500 calls); at 10,000 it runs about once in 100 calls.
GC_YOUNGEST_THRESHOLD = 10_000


def settle_collector() -> None:
    """After start-up: everything built so far (the app, its knowledge, libraries) lives as
    long as the process, so the collector no longer walks it (see the module docstring), and
    the youngest generation is collected less often."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNGEST_THRESHOLD, middle, oldest)


def serve(app: Flask, settings: Settings, prepared: ServingProcess) -> None:
    options = gunicorn_options(settings)
    options["logconfig_dict"] = prepared.log_config

    def child_exit(_server: Any, worker: Any) -> None:
        process_exited(worker.pid)

    options["child_exit"] = child_exit
    stop_checkpointer()  # the master forks the workers: it must have no other thread
    settle_collector()
    gunicorn_util.write_error = write_json_error  # before the workers fork: they inherit it
    GunicornServer(app, options).run()
