"""The FHIR client against a real FHIR server (sekmet), and against a misbehaving one for faults.

The fault server (tests/fault_server.py) is the only stand-in: it plays the slow, failing or
hostile server that a real one cannot be made to be on demand.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import trustme

from cds_service.fhir.client import FetchLimits, FetchResult, FetchTask, FhirClient, KeyFetch
from cds_service.urls import parse_base_url
from tests.fault_server import FaultServer, fault_server
from tests.servers import free_port

PATIENT = "fhir-access-demo"
IL6 = f"Observation?patient={PATIENT}&code=http://loinc.org|26881-3&_sort=-date"
ALL_OBSERVATIONS = f"Observation?patient={PATIENT}&_sort=-date"
TOKEN = "token-that-must-stay-secret"


@pytest.fixture
def client() -> Iterator[FhirClient]:
    made = FhirClient(FetchLimits())
    yield made
    made.close()


@pytest.fixture(scope="module")
def faults(fhir_server: str) -> Iterator[FaultServer]:
    with fault_server(upstream=fhir_server) as server:
        yield server


def fetch(
    client: FhirClient,
    base: str,
    *tasks: FetchTask,
    token: str | None = None,
    deadline_seconds: float = 2.0,
) -> FetchResult:
    return client.fetch_queries(
        list(tasks), parse_base_url(base), token, time.monotonic() + deadline_seconds
    )


def one(client: FhirClient, base: str, query: str = IL6, **kwargs: object) -> KeyFetch:
    return fetch(client, base, FetchTask("k", query), **kwargs).keys["k"]  # type: ignore[arg-type]


def direct_search(base: str, query: str) -> list[str]:
    bundle = requests.get(f"{base}/{query}&_count=500", timeout=5).json()
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def test_search_reads_the_matching_observations(client: FhirClient, fhir_server: str) -> None:
    result = one(client, fhir_server)
    assert result.complete and result.pages == 1
    assert [r["id"] for r in result.resources] == [f"{PATIENT}-il6-2", f"{PATIENT}-il6-1"]
    assert [r["id"] for r in result.resources] == direct_search(fhir_server, IL6)


def test_operation_outcome_entries_of_a_page_are_problems_not_resources(
    client: FhirClient, faults: FaultServer
) -> None:
    result = one(client, faults.url("outcome-entry"), ALL_OBSERVATIONS + "&_count=3")
    assert result.complete and result.pages > 1
    assert {r["resourceType"] for r in result.resources} == {"Observation"}
    assert len(result.problems) == result.pages  # one per page, each with its key
    reason = "OperationOutcome issue: severity warning, code too-costly"
    assert {(p.code, p.reason, p.reference) for p in result.problems} == {
        ("operation-outcome", reason, "fetch:k")
    }


def test_next_links_are_followed_to_the_last_page(client: FhirClient, fhir_server: str) -> None:
    result = one(client, fhir_server, ALL_OBSERVATIONS + "&_count=3")
    expected = direct_search(fhir_server, ALL_OBSERVATIONS)
    assert len(expected) == 9
    assert result.complete and result.pages == 3
    assert [r["id"] for r in result.resources] == expected


def test_paging_stops_at_the_page_limit_and_says_so(fhir_server: str) -> None:
    limited = FhirClient(FetchLimits(max_pages=2))
    try:
        result = one(limited, fhir_server, ALL_OBSERVATIONS + "&_count=3")
    finally:
        limited.close()
    assert result.failure is not None and result.failure.kind == "too-many-pages"
    assert "CYTOKINE_CDS_FHIR_MAX_PAGES" in result.failure.detail
    assert result.pages == 2 and len(result.resources) == 6  # what was read is kept


def test_a_continuation_starts_from_the_next_link(client: FhirClient, fhir_server: str) -> None:
    first = requests.get(f"{fhir_server}/{ALL_OBSERVATIONS}&_count=5", timeout=5).json()
    next_link = next(link["url"] for link in first["link"] if link["relation"] == "next")
    result = one(client, fhir_server, next_link)
    assert result.complete
    assert [r["id"] for r in result.resources] == direct_search(fhir_server, ALL_OBSERVATIONS)[5:]


def test_a_read_returns_the_resource(client: FhirClient, fhir_server: str) -> None:
    result = one(client, fhir_server, f"Patient/{PATIENT}")
    assert result.complete and [r["id"] for r in result.resources] == [PATIENT]


def test_a_read_of_a_missing_resource_is_nothing_found(
    client: FhirClient, fhir_server: str
) -> None:
    result = one(client, fhir_server, "Patient/no-such-patient")
    assert result.complete and result.resources == []


def test_keys_are_read_concurrently_and_independently(
    client: FhirClient, fhir_server: str, faults: FaultServer
) -> None:
    # Three keys on the slow server: sequentially they would need 3 x 2 s.
    slow = FhirClient(FetchLimits(request_timeout=3.0))
    try:
        started = time.monotonic()
        result = fetch(
            slow,
            faults.url("slow"),
            *(FetchTask(key, f"Observation?patient=x&k={key}") for key in "abc"),
            deadline_seconds=3.0,
        )
        elapsed = time.monotonic() - started
    finally:
        slow.close()
    assert all(fetch.complete for fetch in result.keys.values()), result.failures
    assert elapsed < 3.0


def test_an_oversized_answer_is_refused(fhir_server: str) -> None:
    small = FhirClient(FetchLimits(max_response_bytes=1024))
    try:
        result = one(small, fhir_server)
    finally:
        small.close()
    assert result.failure is not None and result.failure.kind == "too-large"


def test_server_down_is_unreachable(client: FhirClient) -> None:
    started = time.monotonic()
    result = one(client, f"http://127.0.0.1:{free_port()}/fhir")
    assert result.failure is not None and result.failure.kind == "unreachable"
    assert time.monotonic() - started < 1.0


def given_up_as_a_timeout_within_one_second(client: FhirClient, url: str) -> None:
    started = time.monotonic()
    result = one(client, url, deadline_seconds=1.0)
    assert time.monotonic() - started < 1.3
    assert result.failure is not None and result.failure.kind == "timeout"


def test_a_slow_server_is_given_up_within_the_deadline(
    client: FhirClient, faults: FaultServer
) -> None:
    given_up_as_a_timeout_within_one_second(client, faults.url("slow"))


def test_a_body_sent_byte_by_byte_cannot_outlast_the_deadline(
    client: FhirClient, faults: FaultServer
) -> None:
    given_up_as_a_timeout_within_one_second(client, faults.url("drip"))


@pytest.mark.parametrize(
    ("fault", "kind", "status"),
    [
        ("status-401", "http-401", 401),
        ("status-403", "http-403", 403),
        ("status-500", "http-5xx", 500),
        ("status-503", "http-5xx", 503),
        ("garbage", "not-json", 200),
        ("redirect", "redirect-refused", 302),
    ],
)
def test_failures_are_reported_by_kind_without_the_token(
    client: FhirClient, faults: FaultServer, fault: str, kind: str, status: int
) -> None:
    result = one(client, faults.url(fault), token=TOKEN)
    assert result.failure is not None
    assert (result.failure.kind, result.failure.status) == (kind, status)
    assert TOKEN not in result.failure.detail
    assert result.resources == []


def test_the_token_is_sent_only_to_the_fhir_server_and_redirects_are_not_followed(
    client: FhirClient, faults: FaultServer
) -> None:
    one(client, faults.url("redirect"), token=TOKEN)
    sent = [r for r in faults.requests if r.fault == "redirect"]
    assert sent and all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in sent)
    assert faults.trapped == []


def test_without_a_token_no_authorization_header_is_sent(
    client: FhirClient, faults: FaultServer
) -> None:
    before = len(faults.requests)
    result = one(client, faults.url("status-401"))
    assert result.failure is not None and "no fhirAuthorization" in result.failure.detail
    sent = faults.requests[before:]
    assert len(sent) == 1 and "Authorization" not in sent[0].headers


def test_a_next_link_to_another_host_is_not_followed(
    client: FhirClient, faults: FaultServer
) -> None:
    result = one(client, faults.url("next-offbase"), ALL_OBSERVATIONS + "&_count=3", token=TOKEN)
    assert result.failure is not None and result.failure.kind == "off-base-url"
    assert result.pages == 1 and len(result.resources) == 3  # the first page is kept
    assert faults.trapped == []


def test_a_failing_later_page_keeps_the_earlier_ones(
    client: FhirClient, faults: FaultServer
) -> None:
    result = one(client, faults.url("page2-500"), ALL_OBSERVATIONS + "&_count=3")
    assert result.failure is not None and result.failure.kind == "http-5xx"
    assert result.pages == 1 and len(result.resources) == 3


def test_a_503_is_retried_once(faults: FaultServer) -> None:
    retrying = FhirClient(FetchLimits(retries=1))
    no_retry = FhirClient(FetchLimits(retries=0))
    try:
        assert one(retrying, faults.url("flaky"), IL6).complete
        failed = one(no_retry, faults.url("flaky"), IL6 + "&again=1")
    finally:
        retrying.close()
        no_retry.close()
    assert failed.failure is not None and failed.failure.status == 503


def test_no_cookie_is_kept_between_requests(client: FhirClient, faults: FaultServer) -> None:
    one(client, faults.url("cookie"), IL6)
    one(client, faults.url("cookie"), IL6 + "&second=1")
    cookie_requests = [r for r in faults.requests if r.fault == "cookie"]
    assert len(cookie_requests) == 2
    assert all("Cookie" not in r.headers for r in cookie_requests)


def test_connections_are_pooled_per_process(client: FhirClient, fhir_server: str) -> None:
    one(client, fhir_server)
    pool, _ = client._resources()
    one(client, fhir_server)
    assert client._resources()[0] is pool  # the same pooled adapter on the next call


def test_a_forked_worker_makes_its_own_pools(client: FhirClient, fhir_server: str) -> None:
    # gunicorn builds the app, then forks: a worker must not reuse the parent's sockets/threads.
    assert one(client, fhir_server).complete
    inherited = client._adapter
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the worker
        try:
            ok = one(client, fhir_server).complete and client._adapter is not inherited
            os.write(write_end, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    assert os.read(read_end, 1) == b"1"
    os.close(read_end)
    assert client._adapter is inherited  # the parent keeps its own


@pytest.fixture(scope="module")
def https_faults(fhir_server: str) -> Iterator[tuple[FaultServer, trustme.CA]]:
    ca = trustme.CA()  # a throw-away CA, as a hospital's internal one
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with fault_server(upstream=fhir_server, tls=context) as server:
        yield server, ca


def test_an_unknown_tls_certificate_is_refused(
    client: FhirClient, https_faults: tuple[FaultServer, trustme.CA]
) -> None:
    server, _ = https_faults
    result = one(client, server.url("proxy"))
    assert result.failure is not None and result.failure.kind == "tls-error"


def test_a_configured_ca_bundle_verifies_the_server(
    tmp_path: Path, https_faults: tuple[FaultServer, trustme.CA]
) -> None:
    server, ca = https_faults
    bundle = tmp_path / "hospital-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    trusting = FhirClient(FetchLimits(ca_bundle=bundle))
    try:
        result = one(trusting, server.url("proxy"), ALL_OBSERVATIONS + "&_count=3", token=TOKEN)
    finally:
        trusting.close()
    assert result.complete and result.pages == 3 and len(result.resources) == 9
    assert server.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"
