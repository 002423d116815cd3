"""`cytokine-cds ehr-setup`: the sheet an EHR's analysts type in.

Epic never reads the discovery endpoint, and Oracle Health registers services by hand, so what
the service needs must be printable. Everything here is derived from the running configuration
(the services and their prefetch templates with the hospital's local codes, the rules, the card
kit, the settings and the trusted-clients file), never from a list kept by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from cds_service.auth.trusted_clients import TrustedClientsError, load_trusted_clients
from cds_service.cards.resources import RXNORM
from cds_service.cards.templates import unit_text
from cds_service.rules.engine import number
from cds_service.rules.setting_rules import reads_oxygen_support
from cds_service.runtime import Runtime

ClientKind = Literal["epic", "oracle", "generic"]
CLIENTS: tuple[ClientKind, ...] = ("epic", "oracle", "generic")


@dataclass(frozen=True)
class JwtExpectations:
    """The JWT settings the sheet reports (from the settings, by the caller)."""

    algorithms: tuple[str, ...]
    max_lifetime_seconds: int
    trusted_clients: Path | None


def setup_sheet(runtime: Runtime, jwt: JwtExpectations, client: ClientKind) -> dict[str, Any]:
    base = runtime.link_base  # the public base URL, else the address served on
    services = [
        {
            "id": service.id,
            "hook": service.hook,
            "url": f"{base}/cds-services/{service.id}",
            "feedback_url": f"{base}/cds-services/{service.id}/feedback",
            "prefetch": [{"key": key, "query": query} for key, query in service.prefetch.items()],
        }
        for service in runtime.services.values()
        if client != "oracle" or service.hook == "patient-view"  # Oracle calls patient-view only
    ]
    templates = [
        query
        for service in runtime.services.values()
        if client != "oracle" or service.hook == "patient-view"
        for query in service.prefetch.values()
    ]
    return {
        "client": client,
        "discovery_url": f"{base}/cds-services",
        "services": services,
        "fhir_scopes": _scopes(client, templates),
        "trigger_criteria": _trigger_criteria(runtime, {str(s["hook"]) for s in services}),
        "override_reasons": _override_reasons(runtime),
        "link_hosts": _link_hosts(runtime, base),
        "jwt": _jwt(jwt, client),
    }


def _scopes(client: ClientKind, templates: Iterable[str]) -> list[str]:
    """The FHIR access the prefetch templates need, as the client names it."""
    reads: set[str] = set()
    searches: set[str] = set()
    for template in templates:
        path, has_query, _ = template.partition("?")
        resource_type = path.split("/")[0]
        (searches if has_query else reads).add(resource_type)
    if client == "epic":
        # Epic names scopes per resource and, for Observation, per category: the labs and vital
        # signs searches need both.
        return [f"{t}.Read (R4)" for t in sorted(reads)] + [
            scope
            for t in sorted(searches)
            for scope in (
                [f"{t}.Search (Labs) (R4)", f"{t}.Search (Vital Signs) (R4)"]
                if t == "Observation"
                else [f"{t}.Search (R4)"]
            )
        ]
    return [f"user/{t}.read" for t in sorted(reads | searches)]


def _trigger_criteria(runtime: Runtime, hooks: set[str]) -> list[dict[str, Any]]:
    """Native criteria that make a call worth making, each naming the hooks it gates.

    patient-view: a recent result of a hyperinflammation sign past its threshold, a result the
    setting rules judge, or any recent cytokine result. The order hooks are gated by the order
    itself: a draft order of a drug the order checks judge, whatever the results, since a
    mismatch or a label caution needs no result past a threshold to be worth saying."""
    criteria = [{**c, "hooks": ["patient-view"]} for c in _result_criteria(runtime)]
    order_hooks = sorted(hooks - {"patient-view"})
    if order_hooks:
        drugs = runtime.rules.drugs.values()
        criteria.append(
            {
                "when": "a draft medication order of a drug the order checks judge "
                "(by RxNorm ingredient, or by name when the order carries a product code)",
                "thresholds": [],
                "codes": [f"{RXNORM}|{drug.rxnorm}" for drug in drugs],
                "names": sorted({name for drug in drugs for name in drug.names}),
                "hooks": order_hooks,
            }
        )
    return criteria


def _result_criteria(runtime: Runtime) -> list[dict[str, Any]]:
    rules, catalog = runtime.rules, runtime.catalog
    criteria: list[dict[str, Any]] = []
    # The setting rules' own markers, but not the label limits only the order checks read.
    safety_only = {c for check in rules.safety for c in check.when}
    setting_markers = [
        marker_id
        for marker_id, marker in rules.markers.items()
        if marker.settings and marker_id not in safety_only
    ]
    for marker_id in [*rules.hyperinflammation.signs, *setting_markers]:
        marker = rules.markers[marker_id]
        entry = catalog.analyte(marker.analyte)
        thresholds = [
            f"{c.comparison} {c.written}"
            if c.written
            else f"{c.comparison} {c.uln_multiple}× the upper reference limit"
            for c in marker.criteria
        ]
        where = ", ".join(rules.settings[s].short for s in marker.settings)
        criteria.append(
            {
                "when": (f"{where}: " if where else "")
                + f"{marker.label}: a result within {entry.freshness_hours:g} h",
                "thresholds": thresholds,
                "codes": [f"{system}|{code}" for system, code in catalog.codes(marker.analyte)],
            }
        )
    astct = runtime.knowledge.scores.astct
    for setting in (s for s in rules.settings.values() if "astct" in s.scores):
        for test in (astct.fever, *astct.hypotension.any):
            entry = catalog.analyte(test.analyte)
            criteria.append(
                {
                    "when": f"{setting.short}, {astct.label}: {entry.display}: a result within "
                    f"{entry.freshness_hours:g} h",
                    "thresholds": [f"{test.op} {number(test.value)} {unit_text(test.unit)}"],
                    "codes": [f"{system}|{code}" for system, code in catalog.codes(test.analyte)],
                }
            )
    criteria += _oxygen_criteria(runtime)
    for group in rules.cytokine_groups:
        for analyte in group.analytes:
            entry = catalog.analyte(analyte)
            criteria.append(
                {
                    "when": f"{entry.display}: any result within {entry.freshness_hours:g} h",
                    "thresholds": [],
                    "codes": [f"{system}|{code}" for system, code in catalog.codes(analyte)],
                }
            )
    return criteria


def _oxygen_criteria(runtime: Runtime) -> list[dict[str, Any]]:
    """Oxygen support decides on its own: ASTCT grades CRS from it (with no fever needed after
    the drugs the scores file names) and RECOVERY's hypoxia counts oxygen given. Any result of
    the codes the chart reader reads for it is a reason to call; the service judges the device,
    flow and FiO2."""
    codes = runtime.knowledge.context.oxygen_codes
    if not codes:
        return []
    what = "oxygen support (device, oxygen flow or FiO2)"
    astct = runtime.knowledge.scores.astct
    criteria: list[dict[str, Any]] = []
    for setting in runtime.rules.settings.values():
        if "astct" in setting.scores:
            after = " or ".join(astct.fever_not_required_after)
            criteria.append(
                {
                    "when": f"{setting.short}, {astct.label}: {what}: any result within "
                    f"{astct.oxygen_fresh_hours:g} h"
                    + (f" (no fever needed after {after})" if after else ""),
                    "thresholds": [],
                    "codes": codes,
                }
            )
        states = [s.short for s in setting.states if reads_oxygen_support(runtime.rules, s.when)]
        conditions = [c for state in setting.states for c in state.when]
        conditions += [c for advice in setting.advice for c in advice.when]
        conditions += [c for avoid in setting.avoid for c in avoid.when]
        if states or reads_oxygen_support(runtime.rules, conditions):
            # The chart reader takes the newest support charted, however old.
            criteria.append(
                {
                    "when": f"{', '.join([setting.short, *states])}: {what}: any result",
                    "thresholds": [],
                    "codes": codes,
                }
            )
    return criteria


def _override_reasons(runtime: Runtime) -> dict[str, Any]:
    kit = runtime.cards.kit
    # A setting card carries the topic of the state it found (rules file), not its template's.
    state_topics = [
        state.topic.code for setting in runtime.rules.settings.values() for state in setting.states
    ]
    cards_by_reason: dict[str, list[str]] = {}
    for name, template in kit.templates.items():
        topics = [template.spec.topic.code]
        if name == "setting-advice":
            topics += state_topics
        for code in template.spec.override_reasons:
            listed = cards_by_reason.setdefault(code, [])
            # States share topics (three HLH states send `hlh`, a pattern and a state both
            # send `immunoparalysis`): each is listed once, where it first appears.
            listed += [topic for topic in dict.fromkeys(topics) if topic not in listed]
    return {
        "system": kit.common.override_reason_system,
        "reasons": [
            {"code": code, "display": display, "cards": cards_by_reason.get(code, [])}
            for code, display in kit.common.override_reasons.items()
        ],
    }


def _link_hosts(runtime: Runtime, base: str) -> list[str]:
    """Hosts of every URL a card can carry: the profile page and the cited sources."""
    hosts = {urlsplit(base).hostname or base}
    if any(source.doi for source in runtime.rules.sources.values()):
        hosts.add("doi.org")
    return sorted(hosts)


def _jwt(settings: JwtExpectations, client: ClientKind) -> dict[str, Any]:
    values: dict[str, Any] = {
        "aud": "each service's URL above (on /feedback that URL is accepted too)",
        "algorithms": list(settings.algorithms),
        "max_lifetime_seconds": settings.max_lifetime_seconds,
        "configured_clients": [],
    }
    if client == "epic":
        values["iss"] = "your organisation's FHIR base URL (the trusted-clients `iss`)"
        values["sub"] = "the CDS client id (the trusted-clients `sub`)"
        values["algorithms"] = ["RS384"]
    elif client == "oracle":
        values["iss"] = "https://cds-hooks.cerner.com"
        values["jku"] = "https://authorization.cerner.com/jwk"
    if settings.trusted_clients is not None:
        try:
            trusted = load_trusted_clients(settings.trusted_clients).clients
        except TrustedClientsError:
            trusted = []
        values["configured_clients"] = [
            {"iss": c.iss, "name": c.name, "audiences": c.audiences, "sub": c.sub} for c in trusted
        ]
    return values


def as_markdown(sheet: dict[str, Any]) -> str:
    names = {"epic": "Epic", "oracle": "Oracle Health", "generic": "a CDS Hooks client"}
    lines = [f"# cytokine-cds: set-up for {names[sheet['client']]}", ""]
    lines += [f"Discovery: `{sheet['discovery_url']}`", "", "## Services", ""]
    for service in sheet["services"]:
        lines += [
            f"### {service['id']} (hook `{service['hook']}`)",
            "",
            f"- URL: `{service['url']}`",
            f"- Feedback: `{service['feedback_url']}`",
            "- Prefetch:",
        ]
        lines += [f"  - `{p['key']}`: `{p['query']}`" for p in service["prefetch"]]
        lines.append("")
    lines += ["## FHIR scopes", ""] + [f"- {scope}" for scope in sheet["fhir_scopes"]]
    lines += ["", "## Suggested trigger criteria (call the service only when one holds)", ""]
    for item in sheet["trigger_criteria"]:
        past = f", {' or '.join(item['thresholds'])}" if item["thresholds"] else ""
        known_as = f"; names {', '.join(item['names'])}" if item.get("names") else ""
        lines.append(
            f"- {', '.join(item['hooks'])}: {item['when']}{past}: "
            f"codes {', '.join(item['codes'])}{known_as}"
        )
    reasons = sheet["override_reasons"]
    lines += ["", f"## Override reasons to map (system `{reasons['system']}`)", ""]
    lines += [
        f"- `{r['code']}`: {r['display']} (cards: {', '.join(r['cards']) or '-'})"
        for r in reasons["reasons"]
    ]
    lines += ["", "## Link hosts to register", ""] + [f"- {h}" for h in sheet["link_hosts"]]
    lines += ["", "## JWT", ""]
    for key, value in sheet["jwt"].items():
        if key != "configured_clients":
            lines.append(f"- `{key}`: {value}")
    for configured in sheet["jwt"]["configured_clients"]:
        lines.append(f"- trusted now: {configured}")
    return "\n".join(lines) + "\n"
