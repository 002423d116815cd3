"""Slow clients against a real `cytokine-cds serve`, directly and behind the shipped nginx
configuration (deploy/nginx/cytokine-cds.conf, run here by a real nginx with only its upstream
and listen addresses changed to loopback ports).

gunicorn's sync workers read a request's body themselves: connections that send their headers
and then the body very slowly hold every worker, and /healthz waits behind them. nginx reads
each request in full before it passes it on, so behind it the same connections cost nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, load_fixture
from tests.servers import cds_service, free_port, stop

NGINX_SITE = ROOT / "deploy" / "nginx" / "cytokine-cds.conf"
WORKERS = 2
THREADS = 1  # sync workers
SLOW_CLIENTS = 4 * WORKERS * THREADS
SERVICE = "/cds-services/cytokine-storm-patient-view"


def nginx_binary() -> str | None:
    configured = os.environ.get("CYTOKINE_TEST_NGINX")
    if configured:
        return configured
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    return found


@contextmanager
def nginx_in_front(upstream: str, workdir: Path) -> Iterator[str]:
    """The shipped site file, proxying to `upstream` (host:port); yields the proxy's base URL."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip(
            "no nginx binary: install Debian's nginx-light (.ci/run does), or set "
            "CYTOKINE_TEST_NGINX"
        )
    port = free_port()
    site = NGINX_SITE.read_text(encoding="utf-8")
    assert site.count("server cds:8080;") == 1 and site.count("listen 8080;") == 1
    site = site.replace("server cds:8080;", f"server {upstream};")
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    (workdir / "site.conf").write_text(site, encoding="utf-8")
    temp = {name: workdir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for folder in temp.values():
        folder.mkdir()
    (workdir / "nginx.conf").write_text(
        "daemon off;\nworker_processes 1;\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + f"pid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'} warn;\n"
        + "events { worker_connections 1024; }\n"
        + "http {\n  access_log off;\n"
        + f"  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
        + f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n"
        + f"  scgi_temp_path {temp['scgi']};\n  include {workdir / 'site.conf'};\n}}\n",
        encoding="utf-8",
    )
    command = [binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf")]
    command += ["-e", str(workdir / "error.log")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process)
        yield base
    finally:
        stop(process)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{output}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nginx did not listen on {port} within {timeout} s")


@contextmanager
def slow_body_connections(base: str, count: int) -> Iterator[list[socket.socket]]:
    """`count` hook calls whose headers arrive at once and whose body never comes."""
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST {SERVICE} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000\r\n\r\n{"
    ).encode()
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection((host, int(port)), timeout=5))
            sock.sendall(head)
            sockets.append(sock)
        time.sleep(0.5)  # every one of them accepted and its headers read
        yield sockets


def timed_healthz(base: str, timeout: float) -> tuple[int | None, float]:
    started = time.monotonic()
    try:
        status: int | None = requests.get(f"{base}/healthz", timeout=timeout).status_code
    except requests.Timeout:
        status = None
    return status, time.monotonic() - started


def test_slow_clients_stall_sync_workers_directly_but_not_behind_the_shipped_proxy(
    tmp_path: Path,
) -> None:
    env = {"CYTOKINE_CDS_WORKER_CLASS": "sync", "CYTOKINE_CDS_DATA_DIR": str(tmp_path / "data")}
    with cds_service(env, workers=WORKERS) as direct:
        upstream = direct.removeprefix("http://")
        with nginx_in_front(upstream, tmp_path) as proxied:
            # Directly: the slow bodies hold both workers; /healthz waits behind them.
            with slow_body_connections(direct, SLOW_CLIENTS):
                status, _ = timed_healthz(direct, timeout=2.0)
                assert status is None, "without a buffering proxy the workers are held"
            assert timed_healthz(direct, timeout=10.0)[0] == 200  # freed when they hang up

            # Behind nginx: the same clients wait in nginx, the workers stay free.
            with slow_body_connections(proxied, SLOW_CLIENTS):
                for _ in range(5):
                    status, seconds = timed_healthz(proxied, timeout=5.0)
                    assert status == 200
                    assert seconds < 1.0, f"/healthz took {seconds:.2f} s behind the proxy"
                call = requests.post(
                    proxied + SERVICE, json=load_fixture("hooks/patient-view.json"), timeout=5
                )
                assert call.status_code == 200
                assert "cards" in call.json()


def test_the_proxy_answers_its_own_refusals_as_operation_outcomes(tmp_path: Path) -> None:
    env = {"CYTOKINE_CDS_DATA_DIR": str(tmp_path / "data")}
    with (
        cds_service(env, workers=1) as direct,
        nginx_in_front(direct.removeprefix("http://"), tmp_path) as proxied,
    ):
        too_large = requests.post(
            proxied + SERVICE,
            data=b"{" + b" " * (9 * 1024 * 1024) + b"}",
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert too_large.status_code == 413
        assert too_large.json()["resourceType"] == "OperationOutcome"
    # The service has stopped: the proxy cannot reach it.
    second = tmp_path / "second"
    second.mkdir()
    with nginx_in_front(f"127.0.0.1:{free_port()}", second) as proxied:
        down = requests.get(proxied + "/healthz", timeout=10)
        assert down.status_code == 503
        assert down.json()["issue"][0]["code"] == "transient"


def test_gthread_workers_are_stalled_by_slow_bodies_too(tmp_path: Path) -> None:
    # Why the proxy and not another worker class: gunicorn's gthread workers read the body in
    # the request's thread as well, so threads x workers slow clients can hold them all. One
    # worker here: with several, one may take every slow connection (gthread accepts greedily)
    # and leave another free, which is luck, not protection.
    threads = 2
    env = {
        "CYTOKINE_CDS_WORKER_CLASS": "gthread",
        "CYTOKINE_CDS_THREADS": str(threads),
        "CYTOKINE_CDS_DATA_DIR": str(tmp_path / "data"),
    }
    with cds_service(env, workers=1) as direct:
        assert timed_healthz(direct, timeout=10.0)[0] == 200
        with slow_body_connections(direct, 2 * threads):
            status, _ = timed_healthz(direct, timeout=2.0)
            assert status is None, "gthread threads are held by slow bodies as well"
