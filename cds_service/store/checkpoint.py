"""SQLite WAL checkpoints off the request path (serving performance).

By default SQLite checkpoints the WAL (copies it into the database file and fsyncs it) inside the
commit that pushes the WAL past 1000 pages: with an audit row per hook call that is every ~100th
call, and that call then took 12-18 ms longer on the benchmark machine. Here request connections
only checkpoint as a safety net (a much larger WAL), and a daemon thread in each process runs a
PASSIVE checkpoint every second: PASSIVE never waits for, nor blocks, readers and writers.

Durability is unchanged: a commit is in the WAL before it returns, whoever checkpoints later.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_SECONDS = 1.0
# Request connections still checkpoint past this many WAL pages (~40 MB with 4 KiB pages), in
# case the background thread cannot keep up or has stopped.
SAFETY_AUTOCHECKPOINT_PAGES = 10_000

_lock = threading.Lock()
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()  # SQLite engines of this process
_thread_pid: int | None = None  # the process whose checkpoint thread is running
_thread: tuple[threading.Thread, threading.Event] | None = None  # and what tells it to stop


def configure_connection(dbapi_connection: Any) -> None:
    """PRAGMA for each new SQLite connection (called from the engine's connect event)."""
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={SAFETY_AUTOCHECKPOINT_PAGES}")


def ensure_checkpointer(engine: Engine) -> None:
    """Checkpoint `engine` in this process's background thread, starting the thread if needed.

    Threads do not survive gunicorn's fork: each worker starts its own on its first connection.
    The thread ends when no engine is left (engines are held weakly: a closed store's engine is
    dropped once it is garbage)."""
    global _thread_pid, _thread
    pid = os.getpid()
    with _lock:
        _engines.add(engine)
        if _thread_pid == pid:
            return
        _thread_pid = pid
        stop = threading.Event()
        thread = threading.Thread(
            target=_checkpoint_loop, args=(stop,), name="sqlite-checkpoint", daemon=True
        )
        _thread = (thread, stop)
        thread.start()


def stop_checkpointer() -> None:
    """Stop this process's checkpoint thread, if it runs (the next connection starts one again).

    The gunicorn master calls this before it forks its workers. A fork copies only the thread
    that forks: a lock the checkpoint thread held at that moment (this module's, the connection
    pool's) would stay held forever in the worker, whose first database write would then hang.
    """
    global _thread_pid, _thread
    with _lock:
        if _thread is None or _thread_pid != os.getpid():
            return  # none, or the parent's (a forked child has only its own threads)
        (thread, stop), _thread, _thread_pid = _thread, None, None
        stop.set()
    thread.join(timeout=5)


def _checkpoint_loop(stop: threading.Event) -> None:
    global _thread_pid, _thread
    failures = 0
    while not stop.wait(CHECKPOINT_INTERVAL_SECONDS):
        with _lock:
            engines = list(_engines)
            if not engines:
                _thread_pid, _thread = None, None
                return
        for engine in engines:
            try:
                _checkpoint(engine)
                failures = 0
            except Exception as exc:  # the safety net above still checkpoints; keep trying
                failures += 1
                if failures in (1, 100):
                    log.warning("background WAL checkpoint failed (%s)", type(exc).__name__)
        del engines


def _checkpoint(engine: Engine) -> None:
    connection = engine.raw_connection()
    try:
        connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
    finally:
        connection.close()
