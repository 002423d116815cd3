"""Errors the service answers with, as FHIR OperationOutcome JSON bodies.

CDS Hooks 2.0 does not define error bodies; the 3.0 ballot asks for an OperationOutcome on
non-2xx answers, which is also what FHIR-aware integration engines parse. Every error names the
problem in `issue[0].diagnostics` and, when one field is at fault, its path in `expression`.
"""

from __future__ import annotations

from typing import Any

# FHIR IssueType code for each HTTP status we answer with.
_ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    412: "incomplete",
    413: "too-long",
    414: "too-long",
    415: "not-supported",
    417: "not-supported",
    429: "throttled",
    431: "too-long",
    500: "exception",
    501: "not-supported",
    503: "transient",
}


class ApiError(Exception):
    """An error with an HTTP status and a message meant for the caller."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return operation_outcome(self.status, self.message, field=self.field)


def operation_outcome(
    status: int, message: str, *, field: str | None = None, severity: str = "error"
) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": severity,
        "code": _ISSUE_CODE.get(status, "processing"),
        "diagnostics": message,
    }
    if field:
        issue["expression"] = [field]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
