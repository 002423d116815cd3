"""What a real `cytokine-cds serve` (gunicorn, two workers) answers to broken or hostile HTTP:
chunked bodies with a bad framing or over the size limit, requests gunicorn refuses itself
before the app sees them, and made-up methods that must not grow /metrics."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import load_fixture
from tests.servers import cds_service

LIMIT = 64 * 1024  # CYTOKINE_CDS_MAX_REQUEST_BYTES of the server under test
SERVICE = "/cds-services/cytokine-storm-patient-view"


def served(
    tmp_path_factory: pytest.TempPathFactory, env: dict[str, str], workers: int
) -> Iterator[str]:
    data = tmp_path_factory.mktemp("served-edges")
    with cds_service({**env, "CYTOKINE_CDS_DATA_DIR": str(data)}, workers=workers) as url:
        yield url


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from served(tmp_path_factory, {"CYTOKINE_CDS_MAX_REQUEST_BYTES": str(LIMIT)}, 2)


def exchange(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the server closes the connection)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The server may answer and close before it has read everything.
        with contextlib.suppress(OSError):
            sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def outcome(headers: dict[str, str], body: bytes) -> str:
    assert headers["content-type"] == "application/json"
    parsed = json.loads(body)
    assert parsed["resourceType"] == "OperationOutcome"
    diagnostics: str = parsed["issue"][0]["diagnostics"]
    return diagnostics


def chunked(body: bytes, size: int = 4096) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def post(path: str, extra_headers: bytes, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
        + extra_headers
        + b"\r\n"
        + body
    )


def test_a_chunked_hook_request_within_the_limit_is_answered(base: str) -> None:
    body = json.dumps(load_fixture("hooks/patient-view.json")).encode()
    assert len(body) < LIMIT
    status, _, answer = exchange(
        base, post(SERVICE, b"Transfer-Encoding: chunked\r\n", chunked(body))
    )
    assert status == 200
    assert "cards" in json.loads(answer)


@pytest.mark.parametrize(
    "framing",
    [b"zz\r\n{}\r\n0\r\n\r\n", b"-2\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"],
    ids=["not-hex", "negative", "no-terminator"],
)
def test_a_malformed_chunk_is_400(base: str, framing: bytes) -> None:
    status, headers, body = exchange(
        base, post(SERVICE, b"Transfer-Encoding: chunked\r\n", framing)
    )
    assert status == 400
    assert "chunk" in outcome(headers, body).lower()


@pytest.mark.parametrize("size", [LIMIT + 1, 3 * LIMIT])
def test_a_chunked_body_over_the_limit_is_413_not_cut_short(base: str, size: int) -> None:
    # Valid JSON whose first LIMIT bytes would parse too (a cut body must not be judged).
    padding = b" " * (size - 2)
    body = b"{}" + padding if size > LIMIT else b"{}"
    status, headers, answer = exchange(
        base, post(SERVICE, b"Transfer-Encoding: chunked\r\n", chunked(body))
    )
    assert status == 413
    assert "CYTOKINE_CDS_MAX_REQUEST_BYTES" in outcome(headers, answer)


def test_a_chunked_body_of_exactly_the_limit_is_read(base: str) -> None:
    body = b"{}" + b" " * (LIMIT - 2)
    status, headers, answer = exchange(
        base, post(SERVICE, b"Transfer-Encoding: chunked\r\n", chunked(body))
    )
    assert status == 400  # read whole, then judged: an empty object is not a hook request
    assert "Invalid request" in outcome(headers, answer)


REFUSED_BY_GUNICORN = {
    "uri-too-long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "header-too-large": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
        431,
    ),
    "too-many-headers": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: a\r\n" % i for i in range(200))
        + b"\r\n",
        431,
    ),
    "negative-content-length": (post(SERVICE, b"Content-Length: -5\r\n", b"{}"), 400),
    "bad-request-line": (b"GARBAGE\r\n\r\n", 400),
    "bad-http-version": (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    "bad-header-name": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400),
    "unknown-transfer-coding": (post(SERVICE, b"Transfer-Encoding: zstd\r\n", b"{}"), 501),
    # A coding gunicorn knows but does not decode is a 400, not a 501.
    "gzip-transfer-coding": (post(SERVICE, b"Transfer-Encoding: gzip\r\n", b"{}"), 400),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BY_GUNICORN))
def test_requests_gunicorn_refuses_are_answered_with_an_operation_outcome(
    base: str, case: str
) -> None:
    raw, expected = REFUSED_BY_GUNICORN[case]
    status, headers, body = exchange(base, raw)
    assert status == expected
    assert outcome(headers, body)
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)


def series(base: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    text = requests.get(f"{base}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_made_up_methods_and_paths_do_not_add_metric_series(base: str) -> None:
    def made_up(n: int) -> None:
        for i in range(n):
            with requests.Session() as session:
                session.request(f"X{i}FOO", f"{base}/cds-services/p-{i}", timeout=5)
                session.request("BREW", f"{base}/healthz/{i}", timeout=5)

    made_up(3)  # every kind of label value the flood below can produce exists now
    series(base)  # and the scrape's own
    before = series(base)
    made_up(100)
    after = series(base)
    assert after - before == set(), sorted(after - before)[:5]
    methods = {dict(labels).get("method") for _, labels in after} - {None}
    assert "other" in methods
    assert methods <= {"GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "other"}


# --- bodies that do not arrive whole ------------------------------------------------------------
WORKER_TIMEOUT = 4  # seconds; the app gives a body half of it


@pytest.fixture(scope="module")
def short_timeout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from served(tmp_path_factory, {"CYTOKINE_CDS_WORKER_TIMEOUT": str(WORKER_TIMEOUT)}, 1)


def announced(length: int) -> bytes:
    return f"Content-Length: {length}\r\n".encode()


def answer_while_open(base: str, start: bytes) -> tuple[int, bytes, float]:
    """Send `start`, then wait without closing; (status, body, seconds)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WORKER_TIMEOUT * 3) as sock:
        began = time.monotonic()
        sock.sendall(start)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body, time.monotonic() - began


def test_a_body_shorter_than_announced_is_408_before_the_worker_timeout(
    short_timeout: str,
) -> None:
    status, body, seconds = answer_while_open(
        short_timeout, post(SERVICE, announced(1000), b'{"hook": "patient-view"')
    )
    assert status == 408
    diagnostics = json.loads(body)["issue"][0]["diagnostics"]
    assert diagnostics.startswith("The request body stopped arriving: nothing more came for 2 s")
    assert WORKER_TIMEOUT / 2 - 0.5 < seconds < WORKER_TIMEOUT
    # The worker was not killed: the next call is answered at once.
    assert requests.get(f"{short_timeout}/healthz", timeout=2).status_code == 200


@pytest.fixture(scope="module")
def threaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"CYTOKINE_CDS_WORKER_TIMEOUT": str(WORKER_TIMEOUT)}
    env["CYTOKINE_CDS_WORKER_CLASS"] = "gthread"
    yield from served(tmp_path_factory, env, 1)


def test_a_keep_alive_worker_reads_nothing_more_after_a_stalled_body(threaded: str) -> None:
    """gthread keeps connections alive, and its 408 even says "Connection: keep-alive"; what
    the client sends next (the rest of the body, then a request) is still never read as a
    request: gunicorn closes the connection once its body read has failed."""
    host, port = threaded.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WORKER_TIMEOUT * 3) as sock:
        start = b'{"hook": "patient-view"'
        sock.sendall(post(SERVICE, announced(1000), start))
        answer = b""
        while b"}]}" not in answer:  # the whole OperationOutcome
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408")
        # The rest of the announced body, then a request: read on, it would be answered.
        late = b" " * (1000 - len(start)) + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        with contextlib.suppress(OSError):  # the server may already have closed it
            sock.sendall(late)
        rest = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                rest += chunk
        assert rest == b""  # no second answer: the connection was closed
    assert requests.get(f"{threaded}/healthz", timeout=2).status_code == 200


def test_a_body_cut_short_by_the_client_says_how_much_came(short_timeout: str) -> None:
    host, port = short_timeout.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(post(SERVICE, announced(1000), b'{"hook": "patient-view"'))
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert int(head.split()[1]) == 400
    assert json.loads(body)["issue"][0]["diagnostics"] == (
        "The request body ended after 23 of the 1000 bytes its Content-Length announced."
    )
