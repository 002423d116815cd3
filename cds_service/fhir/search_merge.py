"""One search instead of several: the plan of the service's own FHIR reads, with the Observation
searches that differ only in their code lists merged, and the merged result given back per key.

The prefetch templates split the Observations into cytokines, labs, vitals and weight (see
cds_service/hooks/prefetch_plan.py: a client sends only a first page, and one search it cannot
run should not cost the others). When the service reads the FHIR server itself it follows every
page, so one search for the union of the codes finds the same Observations for less (measured
on the test server for the benchmark patient: 11.8 ms of its CPU against 2.3 + 6.8 + 6.1 ms for
three, and two requests fewer of ours). The discovery document is not affected.

- Only searches merge, never reads or `next` links; only Observation searches (the type whose
  code parameters' elements `split_fetch` knows); only those whose other parameters are equal,
  as FHIR ANDs parameters and ORs the values of one, so the union of the code lists finds the
  union of the results. `_count` is summed, and so is the page limit (`FetchTask.searches`).
- The union is searched with `combo-code` when any member used it (it matches Observation.code
  or a component's code, a superset of `code`), else with `code`: no server is sent combo-code
  that the separate searches did not send it already.
- A merged URL stays within `max_url_length` (encoded, as sent): servers cap URL length. A
  search that would pass it starts a new group.
- `split_fetch` gives each key exactly what its own search would have matched. The superset is
  not harmless: the evidence reader reads catalog codes in components too, so a panel found
  only because labs were searched with combo-code would add values a `code` search never finds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from requests.utils import requote_uri

from cds_service.fhir.client import FailureKind, FetchTask, KeyFetch

# Well below the 2,000-odd characters that some servers and proxies accept in a request line.
MAX_URL_LENGTH = 1800
# Failures the merged search may have where its members would not (a server capping URL or page
# size, or one that runs no combo-code): those members are read again, separately.
READ_SEPARATELY: frozenset[FailureKind] = frozenset({"http-4xx", "too-large"})

_CODE_PARAMETERS = ("code", "combo-code")
_MERGEABLE_TYPES = ("Observation",)


@dataclass(frozen=True)
class PlannedSearch:
    """What is sent (`task`) and the tasks of the original plan it answers (`members`: the task
    itself when nothing was merged into it)."""

    task: FetchTask
    members: tuple[FetchTask, ...]

    @property
    def merged(self) -> bool:
        return len(self.members) > 1


@dataclass(frozen=True)
class _CodeSearch:
    """A search URL taken apart, raw (nothing decoded, so nothing changes when it is rebuilt)."""

    resource_type: str
    params: tuple[str, ...]  # "name=value", as in the URL
    parameter: str  # code | combo-code
    tokens: tuple[str, ...]
    count: int | None

    @property
    def group(self) -> tuple[object, ...]:
        others = sorted(p for p in self.params if _name(p) not in (*_CODE_PARAMETERS, "_count"))
        return self.resource_type, tuple(others), self.count is None


def merge_searches(
    plan: Sequence[FetchTask], max_url_length: int = MAX_URL_LENGTH
) -> list[PlannedSearch]:
    """`plan` with mergeable searches merged, in the plan's order (a merged search where its
    first member was). `max_url_length` bounds each merged URL as it will be sent (base
    included: the caller takes the base's length off)."""
    groups: list[list[tuple[FetchTask, _CodeSearch | None]]] = []
    filling: dict[tuple[object, ...], int] = {}  # group -> index of the group being filled
    for task in plan:
        search = _code_search(task)
        if search is not None:
            index = filling.get(search.group)
            if index is not None:
                candidate = [*groups[index], (task, search)]
                if len(requote_uri(_merged_url(candidate))) <= max_url_length:
                    groups[index] = candidate
                    continue
            filling[search.group] = len(groups)
        groups.append([(task, search)])
    return [_planned(group) for group in groups]


def split_fetch(search: PlannedSearch, fetch: KeyFetch) -> list[KeyFetch]:
    """What each member of `search` got from the read of `search.task`: the resources its own
    search matches, the pages' notes (about the one search that answered them all) and the
    failure, if any, for every member alike."""
    if not search.merged:
        return [fetch]
    source = f"fetch:{search.task.key}"
    parts = []
    for member in search.members:
        own = _code_search(member)
        assert own is not None  # only code searches are merged
        wanted = _Wanted.of(own.tokens)
        with_components = own.parameter == "combo-code"
        found = [
            resource
            for resource in fetch.resources
            # Anything else (an _include'd resource) each member's own search would bring too.
            if resource.get("resourceType") != own.resource_type
            or any(wanted.matches(c) for c in _codings(resource, with_components))
        ]
        problems = [
            p.model_copy(update={"reference": f"fetch:{member.key}"})
            if p.reference == source
            else p
            for p in fetch.problems
        ]
        parts.append(KeyFetch(member.key, found, fetch.pages, fetch.failure, problems))
    return parts


def _code_search(task: FetchTask) -> _CodeSearch | None:
    """`task` taken apart when it is a search that may be merged, else None."""
    if task.is_continuation or task.is_read:
        return None
    resource_type, _, query = task.url.lstrip("/").partition("?")
    if resource_type not in _MERGEABLE_TYPES:
        return None
    params = tuple(p for p in query.split("&") if p)
    codes = [p.partition("=")[::2] for p in params if _name(p) in _CODE_PARAMETERS]
    counts = [p.partition("=")[2] for p in params if _name(p) == "_count"]
    if len(codes) != 1 or len(counts) > 1 or (counts and not counts[0].isdigit()):
        return None
    parameter, value = codes[0]
    tokens = tuple(token for token in value.split(",") if token)
    if not tokens or "\\" in value:  # an escaped comma inside a code: leave the search as it is
        return None
    return _CodeSearch(resource_type, params, parameter, tokens, int(counts[0]) if counts else None)


def _merged_url(group: Sequence[tuple[FetchTask, _CodeSearch | None]]) -> str:
    searches = [search for _, search in group if search is not None]
    first = searches[0]
    tokens = list(dict.fromkeys(token for search in searches for token in search.tokens))
    combo = any(search.parameter == "combo-code" for search in searches)
    params = []
    for param in first.params:
        if _name(param) in _CODE_PARAMETERS:
            param = f"{'combo-code' if combo else 'code'}={','.join(tokens)}"
        elif _name(param) == "_count":
            param = f"_count={sum(search.count or 0 for search in searches)}"
        params.append(param)
    return f"{first.resource_type}?{'&'.join(params)}"


def _name(param: str) -> str:
    return param.partition("=")[0]


def _planned(group: Sequence[tuple[FetchTask, _CodeSearch | None]]) -> PlannedSearch:
    members = tuple(task for task, _ in group)
    if len(members) == 1:
        return PlannedSearch(members[0], members)
    key = "+".join(task.key for task in members)
    searches = sum(task.searches for task in members)
    return PlannedSearch(FetchTask(key, _merged_url(group), searches), members)


@dataclass(frozen=True)
class _Wanted:
    """The token values of one code list ("system|code", "code", "|code", "system|"), as sets."""

    pairs: frozenset[tuple[str, str]]
    any_system: frozenset[str]
    whole_systems: frozenset[str]

    @classmethod
    def of(cls, tokens: Sequence[str]) -> _Wanted:
        pairs, any_system, whole_systems = set(), set(), set()
        for token in tokens:
            system, bar, code = unquote(token).partition("|")
            if not bar:
                any_system.add(system)  # no bar: the value is a code, of any system
            elif code:
                pairs.add((system, code))  # "|code": a code without a system
            else:
                whole_systems.add(system)
        return cls(frozenset(pairs), frozenset(any_system), frozenset(whole_systems))

    def matches(self, coding: tuple[str, str]) -> bool:
        system, code = coding
        return coding in self.pairs or code in self.any_system or system in self.whole_systems


def _codings(resource: Mapping[str, Any], with_components: bool) -> Iterator[tuple[str, str]]:
    """(system, code) of every coding the search parameter looks at, codes stripped as the
    evidence reader strips them."""
    concepts = [resource.get("code")]
    if with_components:
        components = resource.get("component")
        for component in components if isinstance(components, list) else []:
            concepts.append(component.get("code") if isinstance(component, dict) else None)
    for concept in concepts:
        codings = concept.get("coding") if isinstance(concept, dict) else None
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, dict):
                system, code = coding.get("system"), coding.get("code")
                yield (
                    system if isinstance(system, str) else "",
                    code.strip() if isinstance(code, str) else "",
                )
