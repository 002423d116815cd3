"""The CDS Hooks 2.0 feedback body (spec, "Feedback"), with the 3.0 ballot's cds-fb-* rules.

Lenient where real clients differ: the sandbox sends override reasons without `display`, a
timestamp without a zone is read as UTC, and Epic sends `overrideReasons` (plural, an object)
with a coded `reason` or with its own reason in `extension` (category, display, title).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from cds_service.hooks.request import Lenient, StoredId, StoredText, storable


class ReasonCoding(Lenient):
    system: StoredId | None = None
    code: StoredId
    display: StoredText | None = None


class OverrideReason(Lenient):
    reason: ReasonCoding | None = None
    userComment: StoredText | None = None

    @model_validator(mode="after")
    def _reason_or_comment(self) -> OverrideReason:
        if self.reason is None and not (self.userComment or "").strip():
            raise ValueError("an override reason needs a reason or a userComment")  # cds-fb-3
        return self


# Epic's own override reasons (not the ones a card offers): stored under this system.
EPIC_REASON_SYSTEM = "urn:com.epic.cdshooks.feedback.overrideReason.reasonCategory"
_EPIC_REASON = "com.epic.cdshooks.feedback.overrideReason."


def _from_epic(reasons: Any) -> Any:
    """Epic's `overrideReasons` object as the spec's `overrideReason`: a coded `reason` is kept;
    Epic's extension becomes a coding (category as code, its display or title as display)."""
    if isinstance(reasons, list):  # lenient: a list of them; the first one is the clinician's
        reasons = next((r for r in reasons if isinstance(r, dict)), None)
    if not isinstance(reasons, dict):
        return reasons
    extension = reasons.get("extension")
    if isinstance(extension, list):  # lenient: FHIR's form, a list of {url, value[x]}
        extension = _extension_map(extension)
    if reasons.get("reason") is None and isinstance(extension, dict):
        category = extension.get(_EPIC_REASON + "reasonCategory")
        display = extension.get(_EPIC_REASON + "reasonDisplay") or extension.get(
            _EPIC_REASON + "reasonTitle"
        )
        if isinstance(category, int | str) and str(category).strip():
            reason = {"system": EPIC_REASON_SYSTEM, "code": str(category).strip()}
            if isinstance(display, str) and display.strip():
                reason["display"] = display.strip()
            return {**reasons, "reason": reason}
    return reasons


class AcceptedSuggestion(Lenient):
    id: StoredId


def _extension_map(extensions: list[Any]) -> dict[Any, Any]:
    """FHIR's extension list as Epic's object: url -> value; a valueCoding gives its code,
    and its display when no reasonDisplay is sent."""
    found: dict[Any, Any] = {}
    display = None
    for extension in extensions:
        if not isinstance(extension, dict):
            continue
        value = next((v for k, v in extension.items() if k.startswith("value")), None)
        if isinstance(value, dict):
            display = display or value.get("display")
            value = value.get("code")
        found[extension.get("url")] = value
    if display is not None:
        found.setdefault(_EPIC_REASON + "reasonDisplay", display)
    return found


class FeedbackItem(Lenient):
    # Our card uuids are at most 128 characters (the audit store's column); longer names none.
    card: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
        AfterValidator(storable),
    ]
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    # Epic's plural name is read too, and an error names the member the client sent.
    overrideReason: OverrideReason | None = Field(
        default=None, validation_alias=AliasChoices("overrideReason", "overrideReasons")
    )
    outcomeTimestamp: datetime

    @model_validator(mode="before")
    @classmethod
    def _epic_override_reasons(cls, data: Any) -> Any:
        if isinstance(data, dict) and "overrideReasons" in data and "overrideReason" not in data:
            data = {**data, "overrideReasons": _from_epic(data["overrideReasons"])}
        return data

    @field_validator("outcomeTimestamp")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 9999-12-31T23:59:59-12:00 is in year 10000 in UTC
            raise ValueError("the time is outside the years 1 to 9999 once in UTC") from None

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is required when outcome is 'accepted'")
        return self


class FeedbackRequest(Lenient):
    feedback: list[FeedbackItem] = Field(min_length=1)
