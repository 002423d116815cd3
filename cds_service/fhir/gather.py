"""Everything one hook call reads: prefetch first, then the client's FHIR server for the rest.

For each prefetch key of the service: a satisfied or `null` key is used as sent (null = queried,
nothing found); a missing key, or one whose value was an error, is queried on `fhirServer` with the
same (filled) template; a search that prefetch sent only in part is continued from its `next`
link. What could not be read becomes a `DataGap`; when nothing at all could be read,
`DataUnavailable` is raised (the API answers 412, spec "Prefetch Template"). A `fhirServer` the
service may not contact (not allowlisted, plain http) is one more reason a key could not be read:
Epic always sends `fhirServer`, so a refused one must not cost the cards prefetch supports.
A `combo-code` search the server refuses is read again with `code=`: a partial gap says which
results (those sent only as components) that may miss.

This module reads prefetch through the interface of `cds_service.fhir.prefetch.read_prefetch`
(`PrefetchRead`: `resources`, and `keys` with per-key `state` and `next_url`), typed here by the
protocols below so that any object with those fields fits.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cds_service.evidence.models import DataProblem, ProblemCode
from cds_service.fhir.client import FetchResult, FetchTask, FhirClient, KeyFetch
from cds_service.fhir.search_merge import (
    MAX_URL_LENGTH,
    READ_SEPARATELY,
    PlannedSearch,
    merge_searches,
    split_fetch,
)
from cds_service.fhir.server_policy import ServerPolicy, ServerRefused
from cds_service.fhir.templates import TemplateError, fill_template
from cds_service.observability.metrics import record_fhir_fetch
from cds_service.urls import FhirBase


class PrefetchKeyView(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def state(self) -> str: ...  # satisfied | null | missing | error | incomplete
    @property
    def next_url(self) -> str | None: ...
    @property
    def problems(self) -> Sequence[DataProblem]: ...


class PrefetchView(Protocol):
    @property
    def resources(self) -> Sequence[dict[str, Any]]: ...
    @property
    def keys(self) -> Mapping[str, PrefetchKeyView]: ...


@dataclass(frozen=True)
class DataGap:
    """A prefetch key whose data could not be read (or only in part). `reason` names no
    patient and no token: it is shown to the clinician and the caller."""

    key: str
    reason: str
    partial: bool = False
    # Partial, but every result of the search's own codes was read (only those sent as a
    # component of another Observation may be missed): no history is cut short.
    components_only: bool = False

    @property
    def cuts_history_short(self) -> bool:
        """Older results of this key may be missing (a page limit, a first page alone)."""
        return self.partial and not self.components_only


@dataclass(frozen=True)
class Gathered:
    resources: list[dict[str, Any]]
    gaps: list[DataGap]
    fetched: FetchResult | None = None  # what the FHIR server gave, when it was asked


class DataUnavailable(Exception):
    """None of the data the service needs could be obtained."""

    def __init__(
        self,
        gaps: Sequence[DataGap],
        server: str | None = None,
        refused: ServerRefused | None = None,
    ) -> None:
        self.gaps = list(gaps)
        self.refused = refused  # set when the fhirServer itself may not be contacted
        where = f" (fhirServer {server})" if server else ""
        causes = "; ".join(
            f"{', '.join(keys)}: {reason}" for reason, keys in _by_reason(self.gaps).items()
        )
        self.message = f"None of the data this service needs could be obtained{where}. {causes}."
        super().__init__(self.message)


@dataclass(frozen=True)
class FhirAccess:
    """The FHIR access policy and client of one app (built by the composition root)."""

    policy: ServerPolicy
    client: FhirClient
    allow_anonymous: bool
    deadline_seconds: float
    # Send searches that differ only in their code lists as one (see search_merge).
    merge_code_searches: bool = True

    def gather(
        self,
        prefetch: PrefetchView,
        templates: Mapping[str, str],
        context: Mapping[str, Any],
        fhir_server: str | None,
        token: str | None,
        *,
        started: float | None = None,
        optional: Mapping[str, str] | None = None,
    ) -> Gathered:
        """The resources for `templates` (the service's prefetch keys), with the gaps.

        `optional` keys (the Patient, read for the age) are read too when prefetch lacks them,
        but they answer no call on their own and their absence is no gap.
        `started` (time.monotonic()) is when the hook call arrived; the deadline counts from it.
        Raises DataUnavailable (412) when nothing could be read."""
        started = time.monotonic() if started is None else started
        extra = dict(optional or {})
        obtained: set[str] = set()  # keys with data (or a known "nothing found")
        failed: dict[str, str] = {}  # keys whose prefetch value was an error: what it was
        gaps: list[DataGap] = []
        plan: list[FetchTask] = []
        for key, template in {**extra, **templates}.items():
            status = prefetch.keys.get(key)
            state = status.state if status is not None else "missing"
            if key in extra and key not in templates:
                # Nothing to read it with (a template the context cannot fill): done without.
                with contextlib.suppress(TemplateError):
                    if state in ("missing", "error"):
                        plan.append(FetchTask(key, fill_template(template, context)))
                continue
            if state in ("satisfied", "null"):
                obtained.add(key)
            elif state == "incomplete":
                obtained.add(key)  # its first page(s) came in prefetch
                if status is not None and status.next_url:
                    plan.append(FetchTask(key, status.next_url))
                else:
                    gaps.append(DataGap(key, "prefetch held only part of the results", True))
            else:
                if state == "error" and status is not None:
                    failed[key] = _prefetch_failure(status)
                try:
                    plan.append(FetchTask(key, fill_template(template, context)))
                except TemplateError as exc:
                    gaps.append(DataGap(key, f"not in prefetch, and no query for it: {exc}"))

        fetched: FetchResult | None = None
        unknown_patient: DataGap | None = None  # said even when the Patient key is optional
        server_shown: str | None = None
        refused: ServerRefused | None = None
        if plan:
            if fhir_server is None:
                gaps += [_gap(task, _NO_SERVER, obtained, failed) for task in plan]
            elif token is None and not self.allow_anonymous:
                gaps += [_gap(task, _NO_ANONYMOUS, obtained, failed) for task in plan]
            else:
                try:
                    base = self.policy.check(fhir_server)  # decided before any connection
                except ServerRefused as exc:
                    refused = exc
                    gaps += [_gap(task, exc.message.rstrip("."), obtained, failed) for task in plan]
                else:
                    server_shown = base.url
                    deadline = started + self.deadline_seconds
                    fetched, by_code = self._fetch(plan, base, token, deadline)
                    reads = {task.key: task.url for task in plan}
                    for key, fetch in fetched.keys.items():
                        if fetch.complete or fetch.resources:
                            obtained.add(key)
                        if fetch.not_found and reads[key].startswith("Patient/"):
                            unknown_patient = DataGap(key, _NO_PATIENT)
                        elif fetch.failure is not None:
                            gaps.append(DataGap(key, fetch.failure.detail, key in obtained))
                        elif key in by_code:
                            gaps.append(DataGap(key, _READ_BY_CODE, True, components_only=True))

        obtained -= extra.keys() - templates.keys()
        gaps = [gap for gap in gaps if gap.key in templates]
        if unknown_patient is not None:
            gaps.insert(0, unknown_patient)
        if not obtained:
            raise DataUnavailable(gaps, server_shown, refused)
        resources = list(prefetch.resources)
        if fetched is not None:
            resources += fetched.resources
        order = [*([unknown_patient.key] if unknown_patient else []), *templates]
        gaps.sort(key=lambda gap: order.index(gap.key))
        return Gathered(resources, gaps, fetched)

    def close(self) -> None:
        self.client.close()

    def _fetch(
        self, plan: list[FetchTask], base: FhirBase, token: str | None, deadline: float
    ) -> tuple[FetchResult, frozenset[str]]:
        """`plan` read from `base`, merged where it may be; the result per key of `plan`, and
        the keys whose combo-code search was refused and read again with code=."""
        if self.merge_code_searches:
            searches = merge_searches(plan, MAX_URL_LENGTH - len(base.url) - 1)
        else:
            searches = [PlannedSearch(task, (task,)) for task in plan]
        result = self.client.fetch_queries([s.task for s in searches], base, token, deadline)
        keys: dict[str, KeyFetch] = {}
        again: list[FetchTask] = []
        for search in searches:
            fetch = result.keys[search.task.key]
            if search.merged and fetch.failure and fetch.failure.kind in READ_SEPARATELY:
                again += search.members
            else:
                keys.update((part.key, part) for part in split_fetch(search, fetch))
        elapsed = result.elapsed
        if again:  # within what is left of the same deadline
            separately = self.client.fetch_queries(again, base, token, deadline)
            keys.update(separately.keys)
            elapsed += separately.elapsed
        # US Core requires only `code`: a server that runs no combo-code refuses the search
        # (HTTP 400). Read it again with code=, which misses results sent only as components.
        narrowed = [
            FetchTask(task.key, task.url.replace(_COMBO_CODE, "&code="), task.searches)
            for task in plan
            if _COMBO_CODE in task.url and _refused_search(keys[task.key])
        ]
        if narrowed:
            by_code = self.client.fetch_queries(narrowed, base, token, deadline)
            keys.update(by_code.keys)
            elapsed += by_code.elapsed
        fetched = FetchResult({task.key: keys[task.key] for task in plan}, elapsed)
        # Per prefetch key, however many requests it took.
        failed = [failure.kind for failure in fetched.failures.values()]
        record_fhir_fetch(fetched.elapsed, failed, len(fetched.keys))
        return fetched, frozenset(task.key for task in narrowed)


_NO_SERVER = "the request named no fhirServer to read it from"
# Every search by a patient id the server does not know finds nothing: no card would read as
# an all-clear for a chart the service never saw.
_NO_PATIENT = (
    "the FHIR server has no Patient with the chart's patient id (HTTP 404), so the searches by "
    "it found nothing and nothing was judged; the EHR's patient id may not be this server's"
)
_NO_ANONYMOUS = (
    "the request carried no fhirAuthorization, and anonymous FHIR reads are off "
    "(setting CYTOKINE_CDS_FHIR_ALLOW_ANONYMOUS)"
)


_COMBO_CODE = "&combo-code="
_READ_BY_CODE = (
    "the FHIR server refused the combo-code search, so it was read by code: results sent only "
    "as a component of another Observation (a cytokine inside a panel, blood pressure inside "
    "its panel, oxygen flow or FiO2 inside pulse oximetry) may be missed"
)


def _refused_search(fetch: KeyFetch) -> bool:
    """A search the server refused as such (HTTP 400/422...), before any page was read."""
    failure = fetch.failure
    return failure is not None and failure.kind == "http-4xx" and fetch.pages == 0


def _gap(task: FetchTask, why: str, obtained: set[str], failed: Mapping[str, str]) -> DataGap:
    if task.key in obtained:
        return DataGap(task.key, f"prefetch held only part of the results, and {why}", True)
    if task.key in failed:
        return DataGap(task.key, f"{failed[task.key]}, and {why}")
    return DataGap(task.key, f"not in prefetch, and {why}")


def _prefetch_failure(status: PrefetchKeyView) -> str:
    """What an "error" prefetch value was, for people. An OperationOutcome's diagnostics are
    not copied: servers echo query parameters (patient ids) there."""
    if any(p.code == ProblemCode.MALFORMED for p in status.problems):
        return "the client's prefetch value was not a FHIR resource or Bundle it could read"
    return "the client's prefetch query failed (OperationOutcome)"


def _by_reason(gaps: Sequence[DataGap]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for gap in gaps:
        grouped.setdefault(gap.reason, []).append(gap.key)
    return grouped
