"""Merging the service's own Observation searches: the plan function on its own, then what
`FhirAccess.gather` makes of a merged search against the real FHIR server and its faults."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from requests.utils import requote_uri

from cds_service.composition import fhir_access
from cds_service.evidence.models import DataProblem
from cds_service.fhir.client import FetchFailure, FetchTask, KeyFetch
from cds_service.fhir.gather import FhirAccess, Gathered
from cds_service.fhir.prefetch import read_prefetch
from cds_service.fhir.search_merge import MAX_URL_LENGTH, merge_searches, split_fetch
from cds_service.fhir.templates import fill_template
from cds_service.observability.metrics import metrics
from cds_service.settings import Settings
from tests.fault_server import FaultServer, fault_server
from tests.fhir.test_gather import TEMPLATES, identities

OBSERVATION_KEYS = ("cytokines", "labs", "vitals", "weight")
LOINC = "http://loinc.org"


def plan_of(templates: dict[str, str], patient: str = "p1") -> list[FetchTask]:
    return [
        FetchTask(key, fill_template(t, {"patientId": patient})) for key, t in templates.items()
    ]


def params(url: str) -> dict[str, str]:
    return dict(parse_qsl(url.partition("?")[2]))


def search(key: str, codes: str, parameter: str = "code", rest: str = "&_count=10") -> FetchTask:
    return FetchTask(key, f"Observation?patient=p1&{parameter}={codes}{rest}")


# The plan function -------------------------------------------------------------------------


def test_the_service_observation_searches_become_one_combo_code_search() -> None:
    plan = plan_of(TEMPLATES)
    merged = merge_searches(plan)
    assert len(merged) == len(plan) - (len(OBSERVATION_KEYS) - 1)
    observation = [s for s in merged if s.merged]
    assert len(observation) == 1
    task = observation[0].task
    assert [m.key for m in observation[0].members] == list(OBSERVATION_KEYS)
    assert task.key == "+".join(OBSERVATION_KEYS) and task.searches == len(OBSERVATION_KEYS)
    # Where the first member was, every other task as it was.
    assert [s.task.key for s in merged] == [
        task.key if t.key == "cytokines" else t.key
        for t in plan
        if t.key not in OBSERVATION_KEYS[1:]
    ]
    assert all(s.task == s.members[0] for s in merged if not s.merged)
    got = params(task.url)
    assert "code" not in got  # the labs' `code` joined the others' combo-code
    members = [params(t.url) for t in plan if t.key in OBSERVATION_KEYS]
    union = [c for m in members for c in (m.get("code") or m["combo-code"]).split(",")]
    assert got["combo-code"].split(",") == list(dict.fromkeys(union))
    assert got["_count"] == str(sum(int(m["_count"]) for m in members))
    assert got["patient"] == "p1" and got["_sort"] == "-date"
    assert len(requote_uri(f"https://ehr.example.org/fhir/{task.url}")) <= MAX_URL_LENGTH


def test_code_searches_alone_stay_code_searches_and_codes_are_not_repeated() -> None:
    merged = merge_searches([search("a", f"{LOINC}|1,{LOINC}|2"), search("b", f"{LOINC}|2,x")])
    assert len(merged) == 1
    assert merged[0].task.url == f"Observation?patient=p1&code={LOINC}|1,{LOINC}|2,x&_count=20"


@pytest.mark.parametrize(
    "other",
    [
        search("b", "2", rest="&_count=10&status=final"),  # another filter
        search("b", "2", rest="&_count=10&_sort=-date"),  # another order
        FetchTask("b", "Observation?patient=p2&code=2&_count=10"),  # another patient
        search("b", "2", rest=""),  # the server's page size, not ours
        FetchTask("b", "Procedure?patient=p1&code=2&_count=10"),  # another type
        FetchTask("b", "Observation?patient=p1&code=2&code=3&_count=10"),  # two code lists
        FetchTask("b", "Observation?patient=p1&_count=10"),  # no code list
        search("b", "a\\,b"),  # an escaped comma in a code
    ],
)
def test_only_searches_that_differ_in_their_codes_alone_merge(other: FetchTask) -> None:
    first = search("a", "1")
    assert [s.members for s in merge_searches([first, other])] == [(first,), (other,)]


def test_procedure_searches_are_not_merged_even_when_they_could_be() -> None:
    # split_fetch knows which elements the code parameters of an Observation search match only.
    a, b = (FetchTask(k, f"Procedure?patient=p1&code={k}&_count=10") for k in "ab")
    assert not any(s.merged for s in merge_searches([a, b]))


def test_continuations_and_reads_are_never_merged() -> None:
    first = search("a", "1")
    next_page = FetchTask(
        "b", "https://ehr.example.org/fhir/Observation?patient=p1&code=2&_count=10"
    )
    read = FetchTask("c", "Observation/123")
    assert [s.members for s in merge_searches([first, next_page, read])] == [
        (first,),
        (next_page,),
        (read,),
    ]


def test_a_merged_url_never_passes_the_bound() -> None:
    a, b, c = (search(k, ",".join(f"{LOINC}|{k}{n}" for n in range(20))) for k in "abc")
    two = len(requote_uri(merge_searches([a, b])[0].task.url))
    assert [s.members for s in merge_searches([a, b, c], two - 1)] == [(a,), (b,), (c,)]
    # Room for two: the third starts a new group.
    assert [s.members for s in merge_searches([a, b, c], two)] == [(a, b), (c,)]
    assert all(len(requote_uri(s.task.url)) <= two for s in merge_searches([a, b, c], two))


def observation(oid: str, code: str, *components: str) -> dict[str, Any]:
    def concept(c: str) -> dict[str, Any]:
        return {"coding": [{"system": LOINC, "code": c}]}

    resource: dict[str, Any] = {"resourceType": "Observation", "id": oid, "code": concept(code)}
    if components:
        resource["component"] = [{"code": concept(c)} for c in components]
    return resource


def test_each_key_gets_back_what_its_own_search_matches() -> None:
    labs = search("labs", f"{LOINC}|ferritin,{LOINC}|crp")
    cytokines = search("cytokines", f"{LOINC}|il6", parameter="combo-code")
    merged = merge_searches([labs, cytokines])[0]
    found = [
        observation("f", "ferritin"),
        observation("panel", "cytokine-panel", "il6"),  # il6 only as a component
        observation("cbc", "cbc", "crp"),  # a lab code only as a component: not a `code` match
        observation("il6", "il6 "),  # codes are compared stripped, as the reader does
        observation("other", "glucose"),
        {"resourceType": "Patient", "id": "p1"},  # an _include'd resource: every member's
    ]
    note = DataProblem(code="operation-outcome", reason="cut", reference=f"fetch:{merged.task.key}")
    failure = FetchFailure("http-5xx", "the FHIR server failed (HTTP 500)", 500)
    parts = split_fetch(merged, KeyFetch(merged.task.key, found, 2, failure, [note]))
    assert [p.key for p in parts] == ["labs", "cytokines"]
    ids = {p.key: [r["id"] for r in p.resources] for p in parts}
    assert ids == {"labs": ["f", "p1"], "cytokines": ["panel", "il6", "p1"]}
    assert all(p.failure == failure and p.pages == 2 for p in parts)
    assert [[q.reference for q in p.problems] for p in parts] == [
        ["fetch:labs"],
        ["fetch:cytokines"],
    ]


def test_token_values_match_as_fhir_token_search_does() -> None:
    def coded(oid: str, system: str | None, code: str) -> dict[str, Any]:
        coding = {"code": code} if system is None else {"system": system, "code": code}
        return {"resourceType": "Observation", "id": oid, "code": {"coding": [coding]}}

    # "code": any system; "|code": no system; "system|": any code of it; percent-encoded too.
    merged = merge_searches([search("a", "c1,|c2"), search("b", "urn%3Aoid%3A1.2%7C")])[0]
    found = [
        coded("c1-loinc", LOINC, "c1"),
        coded("c2-none", None, "c2"),
        coded("c2-loinc", LOINC, "c2"),
        coded("oid-any", "urn:oid:1.2", "anything"),
    ]
    parts = split_fetch(merged, KeyFetch(merged.task.key, found))
    assert [[r["id"] for r in p.resources] for p in parts] == [["c1-loinc", "c2-none"], ["oid-any"]]


def test_a_search_that_was_not_merged_is_given_back_as_read() -> None:
    alone = merge_searches([search("a", "1")])[0]
    fetch = KeyFetch("a", [observation("x", "unrelated")])
    assert split_fetch(alone, fetch) == [fetch]


# Against the FHIR server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(fhir_server: str) -> Iterator[FaultServer]:
    with fault_server(upstream=fhir_server) as server:
        yield server


def gather(server: str, patient: str, **settings: Any) -> Gathered:
    fhir: FhirAccess = fhir_access(Settings(fhir_allow_loopback=True, **settings))
    context = {"patientId": patient, "userId": "Practitioner/doc"}
    try:
        return fhir.gather(read_prefetch(None, TEMPLATES), TEMPLATES, context, server, None)
    finally:
        fhir.close()


def observation_searches(server: FaultServer, fault: str, since: int) -> list[str]:
    return [p for p in server.paths(fault)[since:] if "/fhir/Observation" in p]


def errors_counted(kind: str) -> float:
    return (
        metrics().registry.get_sample_value("cytokine_cds_fhir_fetch_errors_total", {"kind": kind})
        or 0.0
    )


def test_a_failed_merged_search_is_a_gap_of_each_of_its_keys(proxy: FaultServer) -> None:
    since = len(proxy.paths("observation-500"))
    errors_before = errors_counted("http-5xx")
    got = gather(proxy.url("observation-500"), "fhir-access-demo")
    # Counted per prefetch key, as the metric's description says, not per request.
    assert errors_counted("http-5xx") - errors_before == len(OBSERVATION_KEYS)
    assert len(observation_searches(proxy, "observation-500", since)) == 1
    assert [(g.key, g.partial) for g in got.gaps] == [(k, False) for k in OBSERVATION_KEYS]
    assert all(g.reason == "the FHIR server failed (HTTP 500)" for g in got.gaps)
    assert got.fetched is not None and set(got.fetched.keys) == set(TEMPLATES)
    assert ("Patient", "fhir-access-demo") in identities(got.resources)


def test_a_merged_search_the_server_refuses_is_read_again_separately_then_by_code(
    proxy: FaultServer, fhir_server: str
) -> None:
    since = len(proxy.paths("strict-combo"))
    got = gather(proxy.url("strict-combo"), "fhir-access-demo")
    sent = observation_searches(proxy, "strict-combo", since)
    # The merged search, the four on their own, then the two combo-code ones with code=.
    assert len(sent) == 1 + len(OBSERVATION_KEYS) + 2
    assert all("combo-code=" not in path for path in sent[1 + len(OBSERVATION_KEYS) :])
    # Read by code, with a partial gap naming what only combo-code would have found.
    assert [(g.key, g.partial) for g in got.gaps] == [("cytokines", True), ("vitals", True)]
    # Every result of the searched codes was read: no history is cut short.
    assert all(g.components_only for g in got.gaps)
    assert all("refused the combo-code search" in g.reason for g in got.gaps)
    assert all("component" in g.reason for g in got.gaps)
    same = gather(fhir_server, "fhir-access-demo", fhir_merge_code_searches=False)
    assert got.fetched is not None and same.fetched is not None
    # fhir-access-demo's results are Observations of their own: code= finds them all.
    for key in ("labs", "cytokines", "vitals"):
        assert got.fetched.keys[key].resources == same.fetched.keys[key].resources, key
    assert got.fetched.keys["cytokines"].resources != []


def test_a_merged_search_cut_by_the_page_limit_leaves_each_key_partly_read(
    fhir_server: str,
) -> None:
    small_pages = {
        k: re.sub(r"_count=\d+", "_count=1", t) if k in OBSERVATION_KEYS else t
        for k, t in TEMPLATES.items()
    }
    fhir = fhir_access(Settings(fhir_allow_loopback=True, fhir_max_pages=1))
    context = {"patientId": "lab-bench", "userId": "Practitioner/doc"}
    try:
        prefetch = read_prefetch(None, small_pages)
        got = fhir.gather(prefetch, small_pages, context, fhir_server, None)
    finally:
        fhir.close()
    # Four pages of four (the members' page limits and page sizes summed), newest first.
    assert sum(r["resourceType"] == "Observation" for r in got.resources) == 16
    gaps = {g.key: g for g in got.gaps}
    assert set(gaps) == set(OBSERVATION_KEYS)
    assert all("CYTOKINE_CDS_FHIR_MAX_PAGES" in g.reason for g in gaps.values())
    assert got.fetched is not None
    for key in OBSERVATION_KEYS:  # partly read where some of it was read, else not read
        assert gaps[key].partial == bool(got.fetched.keys[key].resources)
