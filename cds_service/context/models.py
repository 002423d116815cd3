"""The chart-context contract: what the rules read about a patient beyond the labs.

`read_chart` (reader.py) builds a `ChartContext` from the FHIR resources as read: the clinical
settings the chart supports and why, the drugs given, ordered or taken, the latest respiratory
support, vasopressors, allergies, active infections and latent TB. Everything is frozen; times
are timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cds_service.evidence.models import DataProblem

# iec = immune effector cell therapy: CAR-T cells or a bispecific T-cell engager
Setting = Literal["iec", "covid19", "sepsis", "stills", "hlh", "unknown"]
SETTINGS: tuple[Setting, ...] = ("iec", "covid19", "sepsis", "stills", "hlh", "unknown")

ExposureSource = Literal["administration", "order", "statement"]
OxygenLevel = Literal[
    "room-air",
    "low-flow",
    "high-flow",
    "mask",
    "non-rebreather",
    "venturi",
    "positive-pressure",
    "unknown",
]
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SettingFinding:
    """Why the chart says the patient is in a setting."""

    setting: Setting
    reason: str  # for people: "Condition COVID-19 (U07.1), onset 2026-11-28"
    reference: str | None  # "Condition/abc"; never shown on cards (it could identify)
    when: datetime | None
    # hlh: "primary" | "infection" | "malignancy"; iec: "car-t" | "bispecific"
    kind: str | None = None
    product: str | None = None  # iec: the product or ingredient name
    day: int | None = None  # iec: whole days since the infusion at the time of evaluation


@dataclass(frozen=True)
class DrugExposure:
    """A drug given, ordered or taken."""

    drug: str  # drug id of the context catalog: "tocilizumab", "dexamethasone", "norepinephrine"
    drug_class: str  # "il6-blocker", "corticosteroid", "vasopressor", ...
    source: ExposureSource
    when: datetime | None  # effective time / authoredOn / period start
    dose_mg: float | None  # per administration where readable in mg, else None
    status: str | None
    reference: str | None
    # orders and statements: mg a day from the dosage and its timing (None: not readable)
    daily_mg: float | None = None
    by_weight_kg: float | None = None  # the body weight that turned a dose per kg into mg
    # The patient is on it still: an active order, a statement still being taken or an infusion
    # in progress. `until` is the newest time known on it when later than `when`: the
    # evaluation time when ongoing, else a period's end.
    ongoing: bool = False
    until: datetime | None = None

    def taken_since(self, since: datetime) -> bool:
        """Given, ordered or taken at or after `since`, or undated (which cannot show it is
        old)."""
        latest = self.until or self.when
        return latest is None or latest >= since


@dataclass(frozen=True)
class OxygenSupport:
    """The latest recorded respiratory support."""

    level: OxygenLevel
    flow_l_min: float | None
    fio2: float | None  # fraction 0.21-1.0
    when: datetime | None
    # The newest device record names no device the catalog knows ("AIRVO", "tracheostomy"):
    # the level may come from an older record and understate the support.
    device_unread: bool = False

    def text(self) -> str:
        """For people: "low-flow oxygen, 4 L/min, charted 2026-12-01 10:05 UTC"."""
        parts = [_SUPPORT_NAMES[self.level]]
        if self.flow_l_min:  # "room air, 0 L/min" says nothing more
            parts.append(f"{self.flow_l_min:g} L/min")
        if self.fio2 is not None:
            parts.append(f"FiO₂ {self.fio2 * 100:.0f} %")
        if self.when is not None:
            parts.append(f"charted {self.when:%Y-%m-%d %H:%M} UTC")
        if self.device_unread:
            parts.append("a newer device record could not be read")
        return ", ".join(parts)


_SUPPORT_NAMES: dict[str, str] = {
    "room-air": "room air",
    "low-flow": "low-flow oxygen",
    "high-flow": "oxygen above 6 L/min or high-flow",
    "mask": "face mask",
    "non-rebreather": "non-rebreather mask",
    "venturi": "Venturi mask",
    "positive-pressure": "positive-pressure ventilation",
    "unknown": "oxygen support of unknown kind",
}


@dataclass(frozen=True)
class ChartContext:
    settings: tuple[SettingFinding, ...]  # every setting the chart supports (several can hold)
    drugs: tuple[DrugExposure, ...]
    oxygen: OxygenSupport | None
    vasopressors: tuple[DrugExposure, ...]  # current vasopressor administrations
    allergies: tuple[str, ...]  # drug ids or drug classes the patient is allergic to
    active_infections: tuple[SettingFinding | str, ...]  # for the label safety checks
    latent_tb: bool | None  # None: not recorded
    problems: tuple[DataProblem, ...]  # data problems met while reading the chart
    # Settings only suspected (provisional, differential, unconfirmed Conditions): they never
    # select a setting's rules, but criteria written for "known or suspected" disease (MAS-2016
    # in sJIA) may read them.
    suspected: tuple[SettingFinding, ...] = ()
    # Active infections not merely suspected (provisional, differential): a rule that changes
    # the first-line treatment reads only these.
    confirmed_infections: tuple[SettingFinding, ...] = ()
    age_years: int | None = None  # from Patient.birthDate when the chart carries it
    age_days: int | None = None  # the same in days: age bands of the newborn period need them
    # A birth date of a year or month alone: the age is counted from its last possible day, the
    # youngest it can be (a minimum age is never met on a guess); `oldest_age` (years, days) is
    # counted from its first, for cut-offs that rise with age.
    age_at_least: bool = False
    oldest_age: tuple[int, int] | None = None
    birth_date_unread: bool = False  # a birth date was sent but is no date (or in the future)
    weight_kg: float | None = None  # the current body weight doses are judged by, if charted

    def age_text(self) -> str | None:
        """ "6 years old", "1 year old", "3 months old", "20 days old", "at least 17 years old";
        None: not recorded."""
        years, days = self.age_years, self.age_days
        if years is None:
            return None
        at_least = "at least " if self.age_at_least else ""
        if years >= 1 or days is None:
            return f"{at_least}{years} year{'s' if years != 1 else ''} old"
        if days < 31:
            return f"{at_least}{days} day{'s' if days != 1 else ''} old"
        months = max(1, days * 12 // 365)
        return f"{at_least}{months} month{'s' if months != 1 else ''} old"

    def no_age(self, *, start: bool = False) -> str:
        """Why there is no age, for a card: "the patient's age is not recorded" ("The ..." to
        start a sentence)."""
        the = "The" if start else "the"
        if self.birth_date_unread:
            return f"{the} patient's birth date could not be used, so the age is unknown"
        return f"{the} patient's age is not recorded"

    def has(self, setting: Setting) -> bool:
        return any(finding.setting == setting for finding in self.settings)

    def findings(self, setting: Setting) -> tuple[SettingFinding, ...]:
        """The findings for one setting, newest first (undated last)."""
        found = [finding for finding in self.settings if finding.setting == setting]
        found.sort(key=lambda f: (f.when is not None, f.when or _NEVER), reverse=True)
        return tuple(found)

    def iec_exposure(self) -> SettingFinding | None:
        """The current immune effector cell exposure: the newest CAR-T infusion or bispecific
        dose in its window (a CRS/ICANS diagnosis has no day and is no exposure). The day on
        the card and the drugs given "since the infusion" count from it."""
        return next((f for f in self.findings("iec") if f.day is not None), None)

    def given(self, drug: str, since: datetime | None = None) -> tuple[DrugExposure, ...]:
        """Exposures to a drug id (or a drug class), newest first; `since` drops older ones
        and undated ones."""
        found = [
            exposure
            for exposure in self.drugs
            if drug in (exposure.drug, exposure.drug_class)
            and (since is None or (exposure.when is not None and exposure.when >= since))
        ]
        found.sort(key=lambda e: (e.when is not None, e.when or _NEVER), reverse=True)
        return tuple(found)

    def allergic_to(self, drug: str, drug_class: str | None = None) -> bool:
        return drug in self.allergies or (drug_class is not None and drug_class in self.allergies)


EMPTY_CHART = ChartContext(
    settings=(),
    drugs=(),
    oxygen=None,
    vasopressors=(),
    allergies=(),
    active_infections=(),
    latent_tb=None,
    problems=(),
)
