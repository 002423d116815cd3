"""Which fhirServer the service may contact: decided from the URL, before any connection."""

from __future__ import annotations

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from urllib3.util import parse_url

from cds_service.fhir.server_policy import ServerPolicy, ServerRefused
from cds_service.settings import Settings
from cds_service.urls import parse_base_url

ALLOWED = "https://ehr.invalid/fhir"


def policy(*entries: str, loopback: bool = False, http: bool = False) -> ServerPolicy:
    return ServerPolicy.from_entries(entries, allow_loopback=loopback, allow_http=http)


def refusal(check_policy: ServerPolicy, url: str) -> ServerRefused:
    with pytest.raises(ServerRefused) as caught:
        check_policy.check(url)
    return caught.value


def test_empty_allowlist_refuses_every_server_naming_the_setting() -> None:
    error = refusal(policy(), ALLOWED)
    assert error.setting == "CYTOKINE_CDS_FHIR_ALLOWLIST"
    assert "CYTOKINE_CDS_FHIR_ALLOWLIST" in error.message
    assert "https://ehr.invalid/fhir" in error.message


@pytest.mark.parametrize(
    "url",
    [
        ALLOWED,
        ALLOWED + "/",
        "https://EHR.invalid/fhir",
        "HTTPS://ehr.invalid:443/fhir",
        ALLOWED + "/tenant-a",  # below an allowed base
    ],
)
def test_allowlisted_base_and_what_lies_below_it_are_allowed(url: str) -> None:
    base = policy(ALLOWED).check(url)
    assert base.host == "ehr.invalid" and base.port == 443 and base.scheme == "https"


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.invalid/fhir2",  # a sibling path is not below /fhir
        "https://ehr.invalid/",  # above the allowed base
        "https://ehr.invalid:8443/fhir",
        "https://other.invalid/fhir",
        "https://ehr.invalid.evil.invalid/fhir",
        "http://127.0.0.2:8080/fhir",  # loopback, but not allowlisted and loopback not allowed
    ],
)
def test_servers_off_the_allowlist_are_refused(url: str) -> None:
    assert refusal(policy(ALLOWED), url).setting == "CYTOKINE_CDS_FHIR_ALLOWLIST"


def test_http_off_loopback_is_refused_naming_allow_http_even_when_allowlisted() -> None:
    http_entry = "http://ehr.invalid/fhir"
    error = refusal(policy(http_entry), http_entry)
    assert error.setting == "CYTOKINE_CDS_FHIR_ALLOW_HTTP"
    assert "https" in error.message
    assert policy(http_entry, http=True).check(http_entry).scheme == "http"


def test_http_on_loopback_needs_no_http_setting() -> None:
    assert policy("http://127.0.0.1:8090/fhir").check("http://127.0.0.1:8090/fhir").port == 8090


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9999/fhir",
        "http://127.0.0.2/x",
        "http://localhost:1/r4",
        "http://[::1]:8/f",
    ],
)
def test_allow_loopback_admits_any_loopback_server(url: str) -> None:
    assert policy(loopback=True).check(url).is_loopback


def test_allow_loopback_does_not_admit_other_hosts() -> None:
    assert refusal(policy(loopback=True), ALLOWED).setting == "CYTOKINE_CDS_FHIR_ALLOWLIST"
    # A loopback address in a form only some resolvers read (2130706433 = 127.0.0.1) is not
    # recognised as loopback: refused, never guessed.
    assert refusal(policy(loopback=True), "http://2130706433/fhir").setting is not None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://ehr.invalid\\@evil.invalid/fhir", "'\\'"),  # parsers disagree on the host
        ("https://user:pw@ehr.invalid/fhir", "user info"),
        ("https://ehr.invalid@evil.invalid/fhir", "user info"),
        ("https://ehr.invalid/fhir#frag", "fragment"),
        ("https://ehr.invalid/fhir?x=1", "query"),
        ("https://ehr.invalid/fhir/../admin", "'..'"),
        ("https://ehr.invalid/fhir/%2e%2e/admin", "'..'"),
        ("https://ehr.invalid/ fhir", "spaces"),
        ("https://éhr.invalid/fhir", "ASCII"),
        ("ftp://ehr.invalid/fhir", "http(s)"),
    ],
)
def test_ambiguous_urls_are_refused_before_the_allowlist(url: str, problem: str) -> None:
    error = refusal(policy(ALLOWED, loopback=True), url)
    assert problem in error.message
    assert "pw" not in error.message  # user info is never echoed


def test_next_links_must_stay_on_the_base() -> None:
    base = parse_base_url(ALLOWED)
    assert base.owns(ALLOWED + "/Observation?patient=1&_offset=50")
    assert not base.owns("https://other.invalid/fhir/Observation?_offset=50")
    assert not base.owns("http://ehr.invalid/fhir/Observation")  # scheme downgrade
    assert not base.owns("https://ehr.invalid/fhirx/Observation")
    assert not base.owns("https://ehr.invalid/fhir/../admin")
    assert not base.owns("https://ehr.invalid/fhir/x#@other.invalid")


def test_allowlist_setting_reads_comma_separated_entries() -> None:
    settings = Settings(fhir_allowlist=" https://a.invalid/fhir , http://127.0.0.1:8090/fhir ,")
    assert settings.fhir_allowlist == ["https://a.invalid/fhir", "http://127.0.0.1:8090/fhir"]


def test_allowlist_setting_rejects_bad_entries_at_start_up() -> None:
    with pytest.raises(ValidationError, match=r"entry 2 .* user info") as caught:
        Settings(fhir_allowlist="https://a.invalid/fhir,https://u:secret@a.invalid/fhir")
    # The message (what `cytokine-cds serve` prints) does not echo the credentials.
    assert "secret" not in caught.value.errors()[0]["msg"]
    with pytest.raises(ValidationError, match="CYTOKINE_CDS_FHIR_ALLOW_HTTP"):
        Settings(fhir_allowlist="http://a.invalid/fhir")
    assert Settings(fhir_allowlist="http://a.invalid/fhir", fhir_allow_http=True)


# Characters on which URL parsers are known to disagree.
_TRICKY = st.text(alphabet="ab.:/@\\#?%[]-_019 eEvil", max_size=30)


@settings(max_examples=400, deadline=None)
@given(prefix=_TRICKY, suffix=_TRICKY)
def test_an_accepted_url_always_connects_to_the_allowed_origin(prefix: str, suffix: str) -> None:
    checked = policy(ALLOWED)
    for url in (f"https://{prefix}ehr.invalid/fhir{suffix}", f"https://ehr.invalid/fhir{suffix}"):
        try:
            base = checked.check(url)
        except ServerRefused:
            continue
        # What requests would connect to is what was allowed.
        prepared = parse_url(requests.Request("GET", url).prepare().url or "")
        assert (prepared.scheme, prepared.host, prepared.port or 443) == (
            "https",
            "ehr.invalid",
            443,
        )
        assert base.url == ALLOWED or base.url.startswith(ALLOWED + "/")
        assert parse_base_url(ALLOWED).owns(url)
