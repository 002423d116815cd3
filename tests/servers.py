"""Start and stop real server processes on 127.0.0.1 for end-to-end tests.

Every process started here is stopped (SIGTERM, then SIGKILL) when its context exits, so no test
leaves a process running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cytokine_cds(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """The real `cytokine-cds` command, run to its end with its output captured as text. `env`,
    when given, is its whole environment; else it inherits this process's."""
    return subprocess.run(
        [str(BIN / "cytokine-cds"), *args],
        env=None if env is None else dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_until_up(
    url: str,
    process: subprocess.Popen[bytes],
    output: IO[bytes] | None = None,
    timeout: float = 30.0,
) -> None:
    """Wait for `url` to answer; if the process exits first, raise with what it printed (read
    from `output`, the file it writes to, else from its stdout pipe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if output is not None:
                output.seek(0)
            stream = output if output is not None else process.stdout
            text = stream.read().decode(errors="replace") if stream is not None else ""
            raise RuntimeError(f"server exited with {process.returncode}:\n{text}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up within {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running(
    command: list[str],
    health_url: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    # Output goes to a file, not a pipe: nobody reads a pipe while the test runs, and once its
    # buffer is full the server blocks in its next log line.
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_up(health_url, process, output)
            yield process
        finally:
            stop(process)


@contextmanager
def cds_service(env: Mapping[str, str] | None = None, workers: int = 2) -> Iterator[str]:
    """`cytokine-cds serve` as a hospital would run it; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Authentication off unless the caller's env sets it (tests/auth/ does, with real tokens).
    settings_env = {"CYTOKINE_CDS_WORKERS": str(workers), "CYTOKINE_CDS_AUTH": "off", **(env or {})}
    # The URL clients call, as a hospital configures it (the JWT audience and link base).
    settings_env.setdefault("CYTOKINE_CDS_PUBLIC_BASE_URL", base)
    command = [str(BIN / "cytokine-cds"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with running(command, f"{base}/healthz", env=settings_env):
        yield base
