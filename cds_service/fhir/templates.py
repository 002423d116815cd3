"""Filling CDS Hooks 2.0 prefetch templates with the values of one hook request.

Tokens (spec, "Prefetch tokens"): `{{context.<field>}}` for a first-level context field with a
primitive value, and `{{userPractitionerId}}`, `{{userPractitionerRoleId}}`, `{{userPatientId}}`,
`{{userRelatedPersonId}}`, the bare id from `context.userId` when it names a resource of that type.
Values are percent-encoded, so a context value can never add a query parameter or change the host.
A template with a token the request cannot fill is not run (as the CDS Hooks sandbox does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

_TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class TemplateError(ValueError):
    """A template names a token that the request's context cannot fill."""

    def __init__(self, token: str, reason: str) -> None:
        super().__init__(f"{{{{{token}}}}}: {reason}")
        self.token = token
        self.reason = reason


def fill_template(template: str, context: Mapping[str, Any]) -> str:
    """The query `template` with every token replaced by its percent-encoded value."""

    def value_of(match: re.Match[str]) -> str:
        token = match.group(1)
        return quote(_token_value(token, context), safe="/")

    return _TOKEN.sub(value_of, template)


def _token_value(token: str, context: Mapping[str, Any]) -> str:
    if token.startswith("context."):
        field = token.removeprefix("context.")
        value = context.get(field)
        if value is None:
            raise TemplateError(token, f"the request has no context.{field}")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            text = str(value).strip()
            if text:
                return text
        raise TemplateError(token, f"context.{field} is not a non-empty primitive value")
    resource_type = _USER_TOKENS.get(token)
    if resource_type is None:
        raise TemplateError(token, "not a CDS Hooks 2.0 prefetch token")
    user = context.get("userId")
    kind, _, user_id = str(user or "").partition("/")
    if kind != resource_type or not user_id:
        raise TemplateError(token, f"context.userId does not name a {resource_type}")
    return user_id
