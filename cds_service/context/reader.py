"""Reading the chart around the labs: FHIR resources as received -> ChartContext.

Pure and lenient: a resource of the wrong shape becomes a DataProblem, never an exception. Only
active, confirmed entries define a setting (refuted, entered-in-error, resolved and inactive ones
are skipped); a suspected infection (provisional, differential, unconfirmed) still counts for the
safety checks, since a suspected infection is a reason for caution. Bundles are walked; problems
of the Bundles themselves (OperationOutcome, next pages) are the evidence layer's to report.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from cds_service.evidence.bundles import listed
from cds_service.evidence.models import DataProblem, ProblemCode
from cds_service.evidence.revisions import latest_revisions
from cds_service.evidence.times import fhir_date_span, parse_fhir_datetime
from cds_service.evidence.values import clean_display, number
from cds_service.fhir.draft_orders import (
    MOST_MG,
    daily_dose_mg,
    daily_dose_mg_by_weight,
    first_dose_quantity,
    per_kg_unit,
)

from .catalog import Concept, ContextCatalog, Match, SupportKind
from .models import (
    ChartContext,
    DrugExposure,
    ExposureSource,
    OxygenLevel,
    OxygenSupport,
    Setting,
    SettingFinding,
)

CHART_TYPES = (
    "Condition",
    "Procedure",
    "MedicationAdministration",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
)
_MAX_DEPTH = 3
_EXCLUDED_CLINICAL = {"inactive", "remission", "resolved"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}
_SUSPECTED = {"unconfirmed", "provisional", "differential"}
_PROCEDURE_DONE = {"completed", "in-progress"}
_ADMIN_SKIPPED = {"not-done", "entered-in-error"}
_STATEMENT_SKIPPED = {"not-taken", "entered-in-error"}
_OBSERVATION_USABLE = {"final", "amended", "corrected", "preliminary"}
_SUPPORT_PRIORITY: tuple[SupportKind, ...] = ("device", "flow", "fio2")
_MG_PER_UNIT = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001, "µg": 0.001, "μg": 0.001}
_PERCENT_UNITS = {"%", "percent"}


@dataclass
class _Chart:
    """The resources of a chart by type, with Medications resolvable by reference."""

    by_type: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    medications: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    problems: list[DataProblem] = field(default_factory=list)


def read_chart(
    resources: Iterable[object],
    catalog: ContextCatalog,
    as_of: datetime,
    weight_kg: float | None = None,
) -> ChartContext:
    """The settings, drugs, oxygen support, allergies and infections the chart records;
    `weight_kg`, the current body weight, turns doses given or taken per kg into mg."""
    chart = _collect(resources)
    reader = _Reader(catalog, as_of, chart.problems, weight_kg)
    settings: list[SettingFinding] = []
    supporting: list[SettingFinding] = []  # count only beside another finding of their setting
    suspected: list[SettingFinding] = []
    infections: list[SettingFinding] = []  # suspected ones too: the label checks are cautious
    confirmed_infections: list[SettingFinding] = []
    triggers: list[tuple[str, SettingFinding]] = []
    latent_tb: bool | None = None
    for condition in chart.by_type.get("Condition", []):
        for finding, concept, confirmed in reader.condition(condition):
            if concept.infection:
                infections.append(finding)
                if confirmed:
                    confirmed_infections.append(finding)
            if not confirmed:
                if concept.settings:
                    suspected.append(finding)
                continue
            if concept.settings:
                (supporting if concept.supporting else settings).append(finding)
            if concept.hlh_trigger:
                triggers.append((concept.hlh_trigger, finding))
            if concept.latent_tb:
                latent_tb = True
    for procedure in chart.by_type.get("Procedure", []):
        settings.extend(reader.procedure(procedure))
    drugs: list[DrugExposure] = []
    administrations: list[tuple[DrugExposure, Mapping[str, Any]]] = []
    for source, rtype in (
        ("administration", "MedicationAdministration"),
        ("order", "MedicationRequest"),
        ("statement", "MedicationStatement"),
    ):
        for resource in chart.by_type.get(rtype, []):
            for exposure, concept in reader.exposure(resource, source, chart.medications):  # type: ignore[arg-type]
                drugs.append(exposure)
                if source == "administration":
                    administrations.append((exposure, resource))
                    iec = reader.iec_from_drug(exposure, concept)
                    if iec is not None:
                        settings.append(iec)
    opened = {finding.setting for finding in settings}
    settings += [finding for finding in supporting if finding.setting in opened]
    allergies: list[str] = []
    for allergy in chart.by_type.get("AllergyIntolerance", []):
        for drug in reader.allergy(allergy, chart.medications):
            if drug not in allergies:
                allergies.append(drug)
    age = reader.age(chart.by_type.get("Patient", []))
    return ChartContext(
        settings=tuple(_hlh_kinds(settings, triggers)),
        drugs=tuple(drugs),
        oxygen=reader.oxygen(chart.by_type.get("Observation", [])),
        vasopressors=tuple(
            exposure
            for exposure, resource in administrations
            if exposure.drug_class == "vasopressor" and reader.current(resource)
        ),
        allergies=tuple(allergies),
        active_infections=tuple(infections),
        confirmed_infections=tuple(confirmed_infections),
        latent_tb=latent_tb,
        problems=tuple(chart.problems),
        suspected=tuple(suspected),
        age_years=age.years if age else None,
        age_days=age.days if age else None,
        age_at_least=age.at_least if age else False,
        oldest_age=(age.oldest_years, age.oldest_days) if age and age.at_least else None,
        birth_date_unread=age is None and _has_birth_date(chart.by_type.get("Patient", [])),
        weight_kg=weight_kg,
    )


class _Age(NamedTuple):
    years: int
    days: int
    at_least: bool  # a year or month alone: counted from its last possible day
    oldest_years: int  # counted from its first possible day instead
    oldest_days: int


def _whole_years(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def order_indication(
    order: Mapping[str, Any], catalog: ContextCatalog, chart: ChartContext
) -> frozenset[str] | None:
    """The settings an order's stated indication names (`reasonCode`, or a `reasonReference`
    to a Condition of the chart). None: it states none that can be read; an empty set: it
    states one that is no setting (antenatal corticosteroids, a transplant)."""
    settings: set[str] = set()
    stated = False
    reasons = order.get("reasonCode")
    for concept in reasons if isinstance(reasons, list) else [reasons]:
        if not isinstance(concept, dict):
            continue
        found: list[Match] = []
        for coding in _codings(concept):
            system, code = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(code, str):
                found += catalog.match_code(system, code, "condition")
        if not found:
            for text in _texts(concept):
                found += catalog.match_text(text, "condition")
        stated = stated or bool(found or _texts(concept) or _codings(concept))
        settings.update(setting for match in found for setting in match.concept.settings)
    references = order.get("reasonReference")
    findings = (*chart.settings, *chart.suspected)
    for reference in references if isinstance(references, list) else [references]:
        target = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(target, str) or "Condition/" not in target:
            continue
        tail = "Condition/" + target.rsplit("Condition/", 1)[1]
        named = [f.setting for f in findings if f.reference == tail]
        # A Condition the chart does not show as a setting cannot be told apart: unstated.
        stated = stated or bool(named)
        settings.update(named)
    return frozenset(settings) if stated else None


def _hlh_kinds(
    settings: list[SettingFinding], triggers: list[tuple[str, SettingFinding]]
) -> list[SettingFinding]:
    """An HLH of unstated kind with a recorded trigger (EBV infection, a configured malignancy
    code) is infection- or malignancy-associated; D76.1 alone never says primary."""
    if not triggers:
        return settings
    kind, trigger = triggers[0]
    return [
        replace(finding, kind=kind, reason=f"{finding.reason}; with {trigger.reason}")
        if finding.setting == "hlh" and finding.kind is None
        else finding
        for finding in settings
    ]


def _collect(resources: Iterable[object]) -> _Chart:
    chart = _Chart()
    found: dict[str, list[Mapping[str, Any]]] = {}
    for resource in _walk(resources, 0, chart.problems):
        rtype = resource.get("resourceType")
        if isinstance(rtype, str):
            found.setdefault(rtype, []).append(resource)
    for rtype, items in found.items():
        chart.by_type[rtype] = latest_revisions(items) if rtype != "Observation" else items
    for medication in chart.by_type.get("Medication", []):
        mid = medication.get("id")
        if isinstance(mid, str) and mid:
            chart.medications[mid] = medication
    return chart


def _walk(items: Iterable[object], depth: int, problems: list[DataProblem]) -> Iterator[Any]:
    for item in items:
        if not isinstance(item, dict):
            continue  # the evidence layer reports items that are not JSON objects
        if item.get("resourceType") == "Bundle":
            entries = item.get("entry")
            if depth < _MAX_DEPTH and isinstance(entries, list):
                resources = (e.get("resource") for e in entries if isinstance(e, dict))
                yield from _walk(resources, depth + 1, problems)
        else:
            yield item


def _codes(element: object) -> str:
    """The code or code value (e.g. clinicalStatus) of a CodeableConcept, lower case."""
    if isinstance(element, dict):
        for coding in _codings(element):
            code = coding.get("code")
            if isinstance(code, str) and code.strip():
                return code.strip().casefold()
    if isinstance(element, str):  # a plain code where a CodeableConcept belongs (seen in feeds)
        return element.strip().casefold()
    return ""


def _codings(concept: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    codings = concept.get("coding")
    if isinstance(codings, dict):  # one coding sent as an object
        return [codings]
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


def _texts(concept: Mapping[str, Any]) -> list[str]:
    texts = [concept.get("text")] + [c.get("display") for c in _codings(concept)]
    return [t for t in texts if isinstance(t, str) and t.strip()]


def _has_birth_date(patients: list[Mapping[str, Any]]) -> bool:
    return any(patient.get("birthDate") is not None for patient in patients)


def _reference(resource: Mapping[str, Any]) -> str | None:
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if isinstance(rtype, str) and isinstance(rid, str) and rid.strip():
        return f"{rtype}/{clean_display(rid)}"
    return None


def _day(value: object) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else "date unknown"


def _local_date(raw: object) -> date | None:
    """The calendar date of a FHIR dateTime in its own zone (an infusion day is a local day)."""
    if not isinstance(raw, str) or len(raw.strip()) < 10:
        return None
    try:
        return date.fromisoformat(raw.strip()[:10])
    except ValueError:
        return None


def _own_zone(raw: object) -> tzinfo | None:
    """The zone a FHIR dateTime was written in ("-05:00"), so that today is counted in it too;
    None for a date alone or a time without a zone."""
    if not isinstance(raw, str) or "T" not in raw:
        return None
    try:
        return datetime.fromisoformat(raw.strip().replace("Z", "+00:00")).tzinfo
    except ValueError:
        return None


def _start(resource: Mapping[str, Any], *names: str) -> tuple[datetime | None, object]:
    """The first readable time of `names` (dateTime fields or Periods: their start), and the
    raw text it came from."""
    for name in names:
        value = resource.get(name)
        if isinstance(value, dict):
            value = value.get("start") or value.get("end")
        parsed = parse_fhir_datetime(value)
        if parsed is not None:
            return parsed, value
    return None, None


def _period_end(resource: Mapping[str, Any]) -> datetime | None:
    period = resource.get("effectivePeriod")
    return parse_fhir_datetime(period.get("end")) if isinstance(period, dict) else None


_DURATION_UNITS = {
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "wk": timedelta(weeks=1),
    "mo": timedelta(days=30),  # UCUM's mo is a mean month; a day either way changes nothing
    "a": timedelta(days=365),
}


def _order_end(order: Mapping[str, Any], authored: datetime | None) -> datetime | None:
    """When an order stops: the latest end its dosage timing sets (boundsPeriod, or
    boundsDuration from authoredOn); without one, its dispense validity's end (a prescription
    valid for a year says nothing of a 10-day course); None when neither is set."""
    ends: list[datetime] = []
    for instruction in listed(order.get("dosageInstruction")):
        timing = instruction.get("timing") if isinstance(instruction, dict) else None
        repeat = timing.get("repeat") if isinstance(timing, dict) else None
        if not isinstance(repeat, dict):
            continue
        bounds = repeat.get("boundsPeriod")
        if isinstance(bounds, dict) and (end := parse_fhir_datetime(bounds.get("end"))):
            ends.append(end)
        duration = repeat.get("boundsDuration")
        if isinstance(duration, dict) and authored is not None:
            value = number(duration.get("value"))
            unit = duration.get("code") or duration.get("unit")
            if value is not None and unit in _DURATION_UNITS:
                ends.append(authored + value * _DURATION_UNITS[unit])
    if ends:
        return max(ends)
    validity = order.get("dispenseRequest")
    period = validity.get("validityPeriod") if isinstance(validity, dict) else None
    return parse_fhir_datetime(period.get("end")) if isinstance(period, dict) else None


def _as_needed(instructions: object) -> bool:
    """Every dosage instruction is as needed (asNeededBoolean true, or asNeededCodeableConcept)."""
    found = [i for i in listed(instructions) if isinstance(i, dict)]
    return bool(found) and all(
        i.get("asNeededBoolean") is True or isinstance(i.get("asNeededCodeableConcept"), dict)
        for i in found
    )


class _Reader:
    def __init__(
        self,
        catalog: ContextCatalog,
        as_of: datetime,
        problems: list[DataProblem],
        weight_kg: float | None = None,
    ):
        self.catalog = catalog
        self.as_of = as_of
        self.problems = problems
        self.weight_kg = weight_kg

    def problem(self, code: str, reason: str, resource: Mapping[str, Any]) -> None:
        self.problems.append(DataProblem(code=code, reason=reason, reference=_reference(resource)))

    def age(self, patients: list[Mapping[str, Any]]) -> _Age | None:
        """The age from the first readable Patient.birthDate. A year or month alone counts
        from its last possible day, so the age is a lower bound ("at least 17") and a minimum
        age is never taken as met on a guess. A birth date that is no date, or lies in the
        future, is a data problem and gives no age."""
        today = self.as_of.date()
        for patient in patients:
            raw = patient.get("birthDate")
            if raw is None:
                continue
            days = fhir_date_span(raw)
            if days is None:
                self.problem(
                    ProblemCode.MALFORMED, "Patient.birthDate is not a date: age unknown", patient
                )
                continue
            earliest, latest = days
            # Born "tomorrow" in UTC is born today east of it.
            if earliest > today + timedelta(days=1):
                self.problem(
                    ProblemCode.FUTURE_DATED,
                    "Patient.birthDate is after the evaluation time: age unknown",
                    patient,
                )
                continue
            earliest = min(earliest, today)
            youngest = min(latest, today)  # born this year or month: at most today
            years = _whole_years(youngest, today)
            # Under a year old, the age is told in days or months: any doubt about the day counts.
            oldest = _whole_years(earliest, today)
            uncertain = oldest != years or (years == 0 and earliest < youngest)
            return _Age(years, (today - youngest).days, uncertain, oldest, (today - earliest).days)
        return None

    def matches(self, concept: object, kind: str, *, names: bool) -> list[Match]:
        if not isinstance(concept, dict):
            return []
        found: list[Match] = []
        for coding in _codings(concept):
            system, code = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(code, str):
                found += self.catalog.match_code(system, code, kind)
        if not found and names:
            for text in _texts(concept):
                found += self.catalog.match_text(text, kind)
        unique: dict[str, Match] = {}
        for match in found:
            unique.setdefault(match.concept.id, match)
        return list(unique.values())

    # Conditions ---------------------------------------------------------------------------

    def condition(
        self, resource: Mapping[str, Any]
    ) -> Iterator[tuple[SettingFinding, Concept, bool]]:
        code = resource.get("code")
        if code is not None and not isinstance(code, dict):
            self.problem(ProblemCode.MALFORMED, "Condition.code is not a CodeableConcept", resource)
            return
        # Conditions match free text only where a hospital configured `texts`.
        matches = self.matches(code, "condition", names=True)
        if not matches:
            return
        clinical = _codes(resource.get("clinicalStatus"))
        verification = _codes(resource.get("verificationStatus"))
        if clinical in _EXCLUDED_CLINICAL or verification in _EXCLUDED_VERIFICATION:
            return
        abated, _ = _start(resource, "abatementDateTime", "abatementPeriod")
        if abated is not None and abated <= self.as_of:
            return
        when, _ = _start(resource, "onsetDateTime", "onsetPeriod", "recordedDate")
        if when is not None and when > self.as_of:
            self.problem(
                ProblemCode.FUTURE_DATED, "Condition dated after the evaluation time", resource
            )
            return
        confirmed = verification not in _SUSPECTED
        for match in matches:
            concept = match.concept
            label = "suspected " if not confirmed else ""
            dated = f", onset {_day(when)}" if when is not None else ""
            reason = f"Condition {label}{concept.display} ({_bare(match.code)}){dated}"
            settings: tuple[Setting, ...] = concept.settings or ("unknown",)
            for setting in settings:
                finding = SettingFinding(
                    setting=setting,
                    reason=reason,
                    reference=_reference(resource),
                    when=when,
                    kind=concept.finding_kind,
                )
                yield finding, concept, confirmed
                if not concept.settings or concept.infection:
                    break  # one finding per infection, whatever settings it supports

    # Procedures and CAR-T / bispecific exposures ---------------------------------------------

    def procedure(self, resource: Mapping[str, Any]) -> list[SettingFinding]:
        matches = self.matches(resource.get("code"), "procedure", names=True)
        status = _codes(resource.get("status"))
        if not matches or (status and status not in _PROCEDURE_DONE):
            return []
        when, raw = _start(resource, "performedDateTime", "performedPeriod")
        match = matches[0]
        return self._iec(
            resource,
            kind=match.concept.finding_kind or "car-t",
            product=match.product,
            what=f"Procedure {match.concept.display} ({_bare(match.code)})",
            when=when,
            raw=raw,
        )

    def iec_from_drug(self, exposure: DrugExposure, concept: Concept) -> SettingFinding | None:
        if concept.iec is None:
            return None
        found = self._iec(
            {"resourceType": "MedicationAdministration", "id": _id_of(exposure.reference)},
            kind=concept.iec,
            product=concept.display,
            what=f"MedicationAdministration {concept.display}",
            when=exposure.when,
            raw=exposure.when.isoformat() if exposure.when else None,
        )
        return found[0] if found else None

    def _iec(
        self,
        resource: Mapping[str, Any],
        *,
        kind: str,
        product: str | None,
        what: str,
        when: datetime | None,
        raw: object,
    ) -> list[SettingFinding]:
        label = "CAR-T infusion" if kind == "car-t" else "bispecific T-cell engager dose"
        if when is None:
            self.problem(
                ProblemCode.NO_EFFECTIVE_TIME,
                f"{label} without a date: the day since infusion is unknown, so it does not "
                "place the patient in the immune effector cell setting",
                resource,
            )
            return []
        if when > self.as_of:
            self.problem(ProblemCode.FUTURE_DATED, f"{label} dated after the evaluation", resource)
            return []
        start = _local_date(raw) or when.date()
        zone = _own_zone(raw)
        today = self.as_of.astimezone(zone).date() if zone else self.as_of.date()
        day = (today - start).days
        if day > self.catalog.windows_days[kind]:
            return []
        return [
            SettingFinding(
                setting="iec",
                reason=f"{what}, {_day(when)} (day {day})",
                reference=_reference(resource),
                when=when,
                kind=kind,
                product=product,
                day=day,
            )
        ]

    # Drugs ----------------------------------------------------------------------------------

    def drug_matches(
        self, resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
    ) -> list[Match]:
        concept = resource.get("medicationCodeableConcept")
        if isinstance(concept, dict):
            return self.matches(concept, "drug", names=True)
        ref = resource.get("medicationReference")
        if not isinstance(ref, dict):
            return []
        target = ref.get("reference")
        medication: Mapping[str, Any] | None = None
        if isinstance(target, str) and target.startswith("#"):
            medication = next(
                (
                    c
                    for c in resource.get("contained") or []
                    if isinstance(c, dict) and c.get("id") == target[1:]
                ),
                None,
            )
        elif isinstance(target, str) and "Medication/" in target:
            medication = medications.get(target.rsplit("Medication/", 1)[1].split("/")[0])
        found: list[Match] = []
        if medication is not None:
            found = self.matches(medication.get("code"), "drug", names=True)
            for ingredient in medication.get("ingredient") or []:
                if isinstance(ingredient, dict) and not found:
                    found = self.matches(ingredient.get("itemCodeableConcept"), "drug", names=True)
        if not found and isinstance(ref.get("display"), str):
            found = self.catalog.match_text(ref["display"], "drug")
        return found

    def exposure(
        self,
        resource: Mapping[str, Any],
        source: ExposureSource,
        medications: Mapping[str, Mapping[str, Any]],
    ) -> Iterator[tuple[DrugExposure, Concept]]:
        matches = self.drug_matches(resource, medications)
        if not matches:
            return
        status = _codes(resource.get("status")) or None
        daily: float | None = None
        if source == "administration":
            if status in _ADMIN_SKIPPED:
                return
            when, _ = _start(resource, "effectiveDateTime", "effectivePeriod")
            end = _period_end(resource)
            dosage = resource.get("dosage")
            quantity = dosage.get("dose") if isinstance(dosage, dict) else None
            ongoing = status == "in-progress"
        elif source == "order":
            # Antiemetic dexamethasone "as needed" says nothing of doses taken: only its
            # administrations count.
            if status != "active" or _as_needed(resource.get("dosageInstruction")):
                return
            when, _ = _start(resource, "authoredOn")
            quantity = first_dose_quantity(resource.get("dosageInstruction"))
            daily = _daily(resource.get("dosageInstruction"), self.weight_kg)
            # However long ago it was written, an active scheduled order runs now, up to the end
            # its timing (or, without one, its dispense validity) sets.
            end = _order_end(resource, when)
            ongoing = True
        else:
            if status in _STATEMENT_SKIPPED:
                return
            when, _ = _start(resource, "effectiveDateTime", "effectivePeriod", "dateAsserted")
            end = _period_end(resource)
            quantity = first_dose_quantity(resource.get("dosage"))
            daily = _daily(resource.get("dosage"), self.weight_kg)
            ongoing = status == "active" and not _as_needed(resource.get("dosage"))
        ongoing = ongoing and (end is None or end >= self.as_of)
        until = self.as_of if ongoing else end if end is not None and end <= self.as_of else None
        dose = _dose(quantity, self.weight_kg)
        by_weight = _per_kg(quantity) and (dose is not None or daily is not None)
        if when is not None and when > self.as_of and source == "administration":
            self.problem(
                ProblemCode.FUTURE_DATED, "drug administration dated after evaluation", resource
            )
            return
        for match in matches:
            concept = match.concept
            yield (
                DrugExposure(
                    drug=concept.id,
                    drug_class=concept.drug_class or concept.id,
                    source=source,
                    when=when,
                    dose_mg=dose,
                    status=status,
                    reference=_reference(resource),
                    daily_mg=daily,
                    by_weight_kg=self.weight_kg if by_weight else None,
                    ongoing=ongoing,
                    until=until,
                ),
                concept,
            )

    def current(self, administration: Mapping[str, Any]) -> bool:
        """An administration going on now, or one that ended within the current window."""
        status = _codes(administration.get("status"))
        period = administration.get("effectivePeriod")
        end = parse_fhir_datetime(period.get("end")) if isinstance(period, dict) else None
        start, _ = _start(administration, "effectiveDateTime", "effectivePeriod")
        if start is None or start > self.as_of:
            return False
        if status in ("in-progress", "on-hold") and (end is None or end >= self.as_of):
            return True
        recent = self.as_of - timedelta(hours=self.catalog.vasopressor_current_hours)
        return (end or start) >= recent

    # Allergies ------------------------------------------------------------------------------

    def allergy(
        self, resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
    ) -> list[str]:
        if _codes(resource.get("clinicalStatus")) in ("inactive", "resolved"):
            return []
        if _codes(resource.get("verificationStatus")) in _EXCLUDED_VERIFICATION:
            return []
        concepts = [resource.get("code")]
        for reaction in resource.get("reaction") or []:
            if isinstance(reaction, dict):
                concepts.append(reaction.get("substance"))
        found: list[str] = []
        for concept in concepts:
            for match in self.matches(concept, "drug", names=True):
                found.append(match.concept.id)
            if isinstance(concept, dict):
                for text in _texts(concept):
                    found += [m.concept.id for m in self.catalog.match_text(text, "drug-class")]
        return found

    # Respiratory support --------------------------------------------------------------------

    def oxygen(self, observations: list[Mapping[str, Any]]) -> OxygenSupport | None:
        devices: list[tuple[datetime, OxygenLevel]] = []
        unread: list[datetime] = []  # device records naming no device the catalog knows
        flows: list[tuple[datetime, float]] = []
        fio2s: list[tuple[datetime, float]] = []
        for observation in observations:
            parts = self._support_parts(observation)
            if not parts:
                continue  # a lab or another vital sign
            if _codes(observation.get("status")) not in _OBSERVATION_USABLE:
                continue
            when, _ = _start(observation, "effectiveDateTime", "effectivePeriod", "issued")
            if when is None or when > self.as_of:
                continue
            for kind, part in parts:
                if kind == "device":
                    device = self._device(part)
                    if device is not None:
                        devices.append((when, device))
                    else:
                        unread.append(when)
                elif kind == "flow":
                    flow = _quantity(part.get("valueQuantity"), {"l/min", "l/min.", "lpm"})
                    if flow is not None and 0 <= flow <= 80:
                        flows.append((when, flow))
                else:
                    fio2 = _fraction(part.get("valueQuantity"))
                    if fio2 is not None:
                        fio2s.append((when, fio2))
        if not (devices or flows or fio2s):
            return None
        flow = max(flows)[1] if flows else None
        fio2 = max(fio2s)[1] if fio2s else None
        latest = max(t for t, *_ in [*devices, *flows, *fio2s])
        level: OxygenLevel
        if devices:
            device_time, level = max(devices)
            # Flow charted with or after the device decides low vs high flow (ASTCT: <= 6 L/min).
            high = flow is not None and flow > self.catalog.high_flow_above_l_min
            if level == "low-flow" and high and max(flows)[0] >= device_time:
                level = "high-flow"
        elif flow is not None:
            if flow == 0:
                level = "room-air"
            elif flow > self.catalog.high_flow_above_l_min:
                level = "high-flow"
            else:
                level = "low-flow"
        else:
            level = "room-air" if fio2 is not None and fio2 <= 0.21 else "unknown"
        device_unread = bool(unread) and (not devices or max(unread) >= max(devices)[0])
        return OxygenSupport(
            level=level, flow_l_min=flow, fio2=fio2, when=latest, device_unread=device_unread
        )

    def _support_parts(
        self, observation: Mapping[str, Any]
    ) -> list[tuple[SupportKind, Mapping[str, Any]]]:
        """The root and components of an Observation that chart respiratory support, with what
        each one charts (a part coded as two: device before flow before FiO2)."""
        components = observation.get("component")
        parts = [observation]
        if isinstance(components, list):
            parts += [c for c in components if isinstance(c, dict)]
        found: list[tuple[SupportKind, Mapping[str, Any]]] = []
        for part in parts:
            code = part.get("code")
            kinds = [
                kind
                for coding in (_codings(code) if isinstance(code, dict) else [])
                if (kind := self.catalog.support_kind(coding.get("system"), coding.get("code")))
            ]
            if kinds:
                found.append((min(kinds, key=_SUPPORT_PRIORITY.index), part))
        return found

    def _device(self, part: Mapping[str, Any]) -> OxygenLevel | None:
        matches = self.matches(part.get("valueCodeableConcept"), "device", names=True)
        if not matches and isinstance(part.get("valueString"), str):
            matches = self.catalog.match_text(part["valueString"], "device")
        return matches[0].concept.id if matches else None  # type: ignore[return-value]


def _bare(code: str) -> str:
    """The code without its system, for people: "U07.1", "M08.2*"."""
    return code.rsplit("|", 1)[-1]


def _id_of(reference: str | None) -> str | None:
    return reference.split("/", 1)[1] if reference and "/" in reference else None


def _daily(dosages: object, weight_kg: float | None) -> float | None:
    """mg a day from the dosage instructions and their timing (no timing: once a day; several
    instructions combined by their sequence, None where that is only a lower bound); a dose
    per kg with the body weight."""
    listed = [dosages] if isinstance(dosages, dict) else dosages
    mg = daily_dose_mg(listed)[0]
    if mg is None and weight_kg is not None:
        mg = daily_dose_mg_by_weight(listed, weight_kg)
    return mg


def _unit_of(quantity: Mapping[str, Any]) -> str:
    unit = quantity.get("code") or quantity.get("unit")
    return unit.strip().casefold() if isinstance(unit, str) else ""


def _per_kg(quantity: object) -> bool:
    return isinstance(quantity, dict) and per_kg_unit(_unit_of(quantity)) is not None


def _dose(quantity: object, weight_kg: float | None) -> float | None:
    """A dose in mg when it is a mass, or a mass per kg with the body weight ("{tbl}" counts
    are not readable here)."""
    if not isinstance(quantity, dict):
        return None
    value = number(quantity.get("value"))
    unit = _unit_of(quantity).replace(" ", "")
    per_kg = per_kg_unit(unit)
    kg: float | None = 1.0
    factor: float | None
    if per_kg is not None and not per_kg[1]:  # a day's dose per kg is no one administration
        factor, kg = per_kg[0], weight_kg
    else:
        factor = _MG_PER_UNIT.get(unit.removesuffix("/dose"))
    if value is None or factor is None or kg is None or value < 0:
        return None
    mg = value * factor * kg
    return mg if mg <= MOST_MG else None  # beyond it, an entry error


def _quantity(quantity: object, units: set[str]) -> float | None:
    if not isinstance(quantity, dict):
        return None
    value = number(quantity.get("value"))
    unit = _unit_of(quantity)
    if value is None or unit.replace(" ", "") not in units:
        return None
    return value


def _fraction(quantity: object) -> float | None:
    """FiO2 as a fraction: "%" values (21-100) are divided by 100; a unitless 0.21-1 is kept."""
    if not isinstance(quantity, dict):
        return None
    value = number(quantity.get("value"))
    if value is None:
        return None
    unit = _unit_of(quantity)
    if unit in _PERCENT_UNITS or (not unit and value > 1):
        value = value / 100
    return value if 0.21 <= value <= 1.0 else None
