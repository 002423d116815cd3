"""The CDS Hooks 2.0 request, read leniently.

Unknown members (extensions, fields from newer spec versions) are ignored; a request is refused
only when a field the spec requires is missing or cannot mean anything. `draftOrders` stays a
plain dict here: real clients send Bundles that fail strict R4 validation, so the order reader
picks out the fields it needs.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def storable(value: str) -> str:
    """The text as given; a NUL character in it is a validation error."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return value


# Text the audit store keeps: PostgreSQL's text and jsonb cannot hold a NUL character, and a
# write that fails on one would be retried for ever (or lose the answer's audit row).
StoredText = Annotated[str, AfterValidator(storable)]
StoredId = Annotated[NonEmptyStr, AfterValidator(storable)]


class Lenient(BaseModel):
    """What clients send: unknown members ignored (extensions, later spec versions)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class FhirAuthorization(Lenient):
    """OAuth 2.0 token for the client's FHIR server. Transient: never logged or stored."""

    access_token: SecretStr
    token_type: NonEmptyStr
    # The spec marks these REQUIRED, but none of them changes what we can do with the token;
    # some clients omit expires_in (cds-hooks/sandbox#65), so they are accepted when absent.
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None

    @field_validator("access_token")
    @classmethod
    def _token_not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("token_type")
    @classmethod
    def _bearer_only(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("must be 'Bearer'")
        return "Bearer"


class HookRequest(Lenient):
    hook: NonEmptyStr
    hookInstance: StoredId
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    # The spec's extension is an object; a client sending another shape (a FHIR-style list) is
    # not refused for it: only Epic's keys are read, and only from an object.
    extension: Any = None

    @field_validator("fhirServer")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _token_needs_server(self) -> HookRequest:
        # cds-r-1: a token is only meaningful together with the server it is for.
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        return self


EPIC_TRIGGER_ACTION = "com.epic.cdshooks.request.bpa-trigger-action"
EPIC_CRITERIA_ID = "com.epic.cdshooks.request.criteria-id"


def _short_text(value: Any, limit: int) -> str | None:
    """A client's label as the audit row may keep it: printable, trimmed, at most `limit`."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = "".join(c for c in str(value).strip() if c.isprintable())[:limit]
    return text or None


def ehr_trigger(request: HookRequest) -> tuple[str | None, str | None]:
    """(trigger action, criteria id) from the request's top-level `extension` object (Epic),
    or (None, None). Epic reuses patient-view for many triggers; these say which one fired."""
    extension = request.extension if isinstance(request.extension, dict) else {}
    return (
        _short_text(extension.get(EPIC_TRIGGER_ACTION), 64),
        _short_text(extension.get(EPIC_CRITERIA_ID), 128),
    )


class PatientViewContext(Lenient):
    userId: NonEmptyStr
    patientId: NonEmptyStr
    encounterId: NonEmptyStr | None = None

    @field_validator("patientId")
    @classmethod
    def _bare_patient_id(cls, value: str) -> str:
        # The spec sends the bare id; some clients send the reference "Patient/<id>". Both mean
        # the same patient, and every check downstream compares bare ids.
        bare = value.removeprefix("Patient/").strip()
        if not bare or "/" in bare:
            raise ValueError("must be a Patient id (or 'Patient/<id>')")
        return bare


# What draftOrders may hold: a Bundle of them, or (read leniently) one of them alone.
_REQUEST_TYPES = frozenset(
    {
        "Bundle",
        "MedicationRequest",
        "ServiceRequest",
        "NutritionOrder",
        "DeviceRequest",
        "VisionPrescription",
        "CommunicationRequest",
        "SupplyRequest",
        "ImmunizationRecommendation",
        "CarePlan",
        "RequestGroup",
    }
)


class OrderSignContext(PatientViewContext):
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _orders(cls, value: dict[str, Any]) -> dict[str, Any]:
        rtype = value.get("resourceType")
        if rtype is not None and (not isinstance(rtype, str) or rtype not in _REQUEST_TYPES):
            # A Patient or an Observation there cannot mean any order: the answer would be empty.
            raise ValueError(f"must be a Bundle of draft orders, not a {str(rtype)[:40]!r}")
        return value


class OrderSelectContext(OrderSignContext):
    # Empty: nothing selected yet. Missing (the hook requires it): every draft order is judged,
    # as at order-sign, rather than none.
    selections: list[NonEmptyStr] | None = None
