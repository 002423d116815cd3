"""A FHIR server that misbehaves on purpose, for the fault cases only.

It runs in a thread of the test process on 127.0.0.1. The first path segment picks the fault, so
one server serves every case: `{base}/{fault}/fhir` is the fhirServer a test sends.

- `slow`: waits `SLOW_SECONDS` before answering (the issue's "2 s delay").
- `status-NNN` (401, 403, 429, 500, 503, ...): that status with an OperationOutcome.
- `garbage`: 200 with an HTML page.
- `redirect`: 302 to the trap server on another loopback address (127.0.0.2).
- `drip`: 200 with a body sent one byte every 0.2 s.
- `proxy`: forwards to the real FHIR server, with links rewritten to point back here.
- `flaky`: like proxy, but each distinct URL first answers 503 once.
- `page2-500`: like proxy, but pages after the first answer 500.
- `next-offbase`: like proxy, but `next` links point to the trap server.
- `cookie`: like proxy, and sets a cookie on every answer.
- `observation-500`: like proxy, but Observation searches answer 500.
- `strict-combo`: like proxy, but a search with `combo-code` answers 400, as a server that runs
  no combo-code and handles unknown parameters strictly does.
- `outcome-entry`: like proxy, and each search page carries an OperationOutcome entry (search mode
  "outcome", severity warning), as servers add when they cut or rewrite a search.

Every request is recorded (fault, path, headers), so tests can check what was (not) sent.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

SLOW_SECONDS = 2.0
OUTCOME_WARNING = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "warning", "code": "too-costly", "diagnostics": "Patient/p search cut"}],
}


@dataclass
class Recorded:
    fault: str
    path: str
    headers: dict[str, str]


@dataclass
class FaultServer:
    base: str  # http://127.0.0.1:PORT
    trap_base: str  # http://127.0.0.2:PORT, a host that must never be contacted
    upstream: str | None
    requests: list[Recorded] = field(default_factory=list)
    trapped: list[Recorded] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def url(self, fault: str) -> str:
        return f"{self.base}/{fault}/fhir"

    def paths(self, fault: str) -> list[str]:
        return [r.path for r in self.requests if r.fault == fault]


def _handler(server: FaultServer, trap: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

        def do_GET(self) -> None:
            fault, _, rest = self.path.lstrip("/").partition("/")
            record = Recorded(fault, self.path, {k: v for k, v in self.headers.items()})
            if trap:
                server.trapped.append(record)
                self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": 0})
                return
            server.requests.append(record)
            fhir_path = rest.removeprefix("fhir")
            if fault == "slow":
                time.sleep(SLOW_SECONDS)
                self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": 0})
            elif fault.startswith("status-"):
                status = int(fault.removeprefix("status-"))
                self._send(status, _outcome(f"fault server: HTTP {status}"))
            elif fault == "garbage":
                self._raw(200, b"<html><body>Gateway says hello</body></html>", "text/html")
            elif fault == "redirect":
                self.send_response(302)
                self.send_header("Location", f"{server.trap_base}/stolen/fhir{fhir_path}")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif fault == "drip":
                self._drip()
            elif fault == "flaky" and self.path not in server.seen:
                server.seen.add(self.path)
                self._send(503, _outcome("fault server: try again"))
            elif fault == "page2-500" and "_offset=" in self.path and "_offset=0" not in self.path:
                self._send(500, _outcome("fault server: page 2 fails"))
            elif fault == "observation-500" and fhir_path.startswith("/Observation"):
                self._send(500, _outcome("fault server: Observation searches fail"))
            elif fault == "strict-combo" and "combo-code=" in fhir_path:
                self._send(400, _outcome("fault server: unknown search parameter combo-code"))
            else:
                self._proxy(fault, fhir_path)

        def _proxy(self, fault: str, fhir_path: str) -> None:
            assert server.upstream is not None, "proxy faults need the real FHIR server"
            upstream = requests.get(f"{server.upstream}{fhir_path}", timeout=10)
            text = upstream.text.replace(server.upstream, server.url(fault))
            if fault == "next-offbase":
                body = json.loads(text)
                for link in body.get("link", []):
                    if link["relation"] == "next":
                        link["url"] = link["url"].replace(server.base, server.trap_base)
                text = json.dumps(body)
            if fault == "outcome-entry" and '"Bundle"' in text:
                body = json.loads(text)
                body.setdefault("entry", []).append(
                    {"resource": OUTCOME_WARNING, "search": {"mode": "outcome"}}
                )
                text = json.dumps(body)
            cookie = {"Set-Cookie": "session=fault-server-cookie; Path=/"}
            extra = cookie if fault == "cookie" else {}
            self._raw(upstream.status_code, text.encode(), "application/fhir+json", extra)

        def _drip(self) -> None:
            body = json.dumps({"resourceType": "Bundle", "type": "searchset"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass  # the client gave up, as it should

        def _send(self, status: int, body: dict[str, Any]) -> None:
            self._raw(status, json.dumps(body).encode(), "application/fhir+json")

        def _raw(
            self,
            status: int,
            body: bytes,
            content_type: str,
            extra: dict[str, str] | None = None,
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (deadline), as it should

    return Handler


def _outcome(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": text}],
    }


@contextmanager
def fault_server(
    upstream: str | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[FaultServer]:
    """The fault server on 127.0.0.1 (over https with `tls`) and its trap on 127.0.0.2, both
    stopped on exit."""
    main = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    trap = ThreadingHTTPServer(("127.0.0.2", 0), BaseHTTPRequestHandler)
    if tls is not None:
        main.socket = tls.wrap_socket(main.socket, server_side=True)
    state = FaultServer(
        base=f"{'https' if tls else 'http'}://127.0.0.1:{main.server_address[1]}",
        trap_base=f"http://127.0.0.2:{trap.server_address[1]}",
        upstream=upstream,
    )
    main.RequestHandlerClass = _handler(state, trap=False)
    trap.RequestHandlerClass = _handler(state, trap=True)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (main, trap)]
    for thread in threads:
        thread.start()
    try:
        yield state
    finally:
        for s in (main, trap):
            s.shutdown()
            s.server_close()
        for thread in threads:
            thread.join(timeout=5)
