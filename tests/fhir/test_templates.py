"""Filling prefetch templates with the request's context (CDS Hooks 2.0 prefetch tokens)."""

from __future__ import annotations

import pytest

from cds_service.api.runtime import EXTENSION_KEY
from cds_service.app import create_app
from cds_service.fhir.templates import TemplateError, fill_template
from cds_service.runtime import Runtime
from cds_service.settings import Settings

CONTEXT = {"patientId": "p-1", "userId": "Practitioner/doc-7", "encounterId": "e.9"}


def test_context_tokens_are_filled() -> None:
    template = "Observation?patient={{context.patientId}}&encounter={{ context.encounterId }}"
    assert fill_template(template, CONTEXT) == "Observation?patient=p-1&encounter=e.9"


def test_the_services_own_templates_fill_with_a_patient_view_context() -> None:
    runtime: Runtime = create_app(Settings(auth="off")).extensions[EXTENSION_KEY]
    for service in runtime.services.values():
        for template in service.prefetch.values():
            filled = fill_template(template, CONTEXT)
            assert "{{" not in filled and "p-1" in filled


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("userPractitionerId", "doc-7"),
        ("context.userId", "Practitioner/doc-7"),  # a Type/id read
    ],
)
def test_user_tokens(token: str, value: str) -> None:
    assert fill_template("{{" + token + "}}", CONTEXT) == value


def test_values_are_percent_encoded_so_they_cannot_add_parameters() -> None:
    filled = fill_template(
        "Observation?patient={{context.patientId}}", {"patientId": "1&_count=100000#x"}
    )
    assert filled == "Observation?patient=1%26_count%3D100000%23x"


@pytest.mark.parametrize(
    ("template", "context", "reason"),
    [
        ("Encounter/{{context.encounterId}}", {"patientId": "p"}, "no context.encounterId"),
        ("X?p={{context.draftOrders}}", {"draftOrders": {"a": 1}}, "not a non-empty primitive"),
        ("X?p={{context.patientId}}", {"patientId": "  "}, "not a non-empty primitive"),
        ("Patient/{{Patient.id}}", CONTEXT, "not a CDS Hooks 2.0 prefetch token"),
        ("X?d={{today()}}", CONTEXT, "not a CDS Hooks 2.0 prefetch token"),
        ("PractitionerRole/{{userPractitionerRoleId}}", CONTEXT, "not name a PractitionerRole"),
    ],
)
def test_unfillable_tokens_raise_naming_the_token(
    template: str, context: dict[str, object], reason: str
) -> None:
    with pytest.raises(TemplateError, match=reason) as caught:
        fill_template(template, context)
    assert caught.value.token in template
