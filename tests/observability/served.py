"""`cytokine-cds serve` (gunicorn) on 127.0.0.1 with its whole output kept in a file.

tests/servers.py pipes the output, which is fine for a few lines; these tests log at DEBUG and
read everything the server printed, so the output goes to a file (a full pipe would block it).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import BIN, free_port, stop, wait_until_up


@dataclass
class Served:
    base: str
    output: Path
    process: subprocess.Popen[bytes]

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")


@contextmanager
def served(
    workdir: Path, env: Mapping[str, str] | None = None, workers: int = 2
) -> Iterator[Served]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    output = workdir / "server-output.log"
    settings_env = {
        **os.environ,
        "CYTOKINE_CDS_WORKERS": str(workers),
        "CYTOKINE_CDS_AUTH": "off",
        "CYTOKINE_CDS_DATA_DIR": str(workdir / "data"),
        "CYTOKINE_CDS_PUBLIC_BASE_URL": base,  # the URL clients call: the JWT audience
        **(env or {}),
    }
    command = [str(BIN / "cytokine-cds"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command, env=settings_env, stdout=sink, stderr=subprocess.STDOUT, cwd=workdir
        )
    try:
        try:
            wait_until_up(f"{base}/healthz", process)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{output.read_text(errors='replace')[-3000:]}") from None
        yield Served(base, output, process)
    finally:
        stop(process)
