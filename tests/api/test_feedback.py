"""The feedback endpoint validates the spec's body and names what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.hooks.feedback import FeedbackItem

FEEDBACK = "/cds-services/cytokine-storm-patient-view/feedback"


def item(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
        "outcomeTimestamp": "2026-11-20T08:31:02.518Z",
    }
    base.update(fields)
    return {key: value for key, value in base.items() if value is not ...}


@pytest.mark.parametrize(
    "body",
    [
        {"feedback": [item()]},
        # What the CDS Hooks sandbox sends on dismissal: reason without display.
        {
            "feedback": [
                item(
                    outcome="overridden",
                    acceptedSuggestions=...,
                    overrideReason={"reason": {"code": "clinical-judgement", "system": "x"}},
                )
            ]
        },
        {"feedback": [item(outcome="overridden", acceptedSuggestions=...)]},
        {"feedback": [item(outcome="overridden", overrideReason={"userComment": "on anakinra"})]},
        {"feedback": [item(outcomeTimestamp="2026-11-20T08:31:02")]},
    ],
)
def test_valid_feedback_is_200(client: FlaskClient, body: dict[str, Any]) -> None:
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 200
    assert response.get_json() == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": [item(card=...)]}, "feedback.0.card"),
        ({"feedback": [item(outcome="ignored")]}, "feedback.0.outcome"),
        ({"feedback": [item(acceptedSuggestions=...)]}, "feedback.0"),
        ({"feedback": [item(acceptedSuggestions=[{}])]}, "feedback.0.acceptedSuggestions.0.id"),
        ({"feedback": [item(outcomeTimestamp=...)]}, "feedback.0.outcomeTimestamp"),
        ({"feedback": [item(outcomeTimestamp="yesterday")]}, "feedback.0.outcomeTimestamp"),
        (
            {"feedback": [item(outcome="overridden", overrideReason={})]},
            "feedback.0.overrideReason",
        ),
        # PostgreSQL's text and jsonb cannot hold NUL: a 503 "send it again" could never work.
        ({"feedback": [item(card="9368d37b\u0000")]}, "feedback.0.card"),
        (
            {"feedback": [item(acceptedSuggestions=[{"id": "a\u0000b"}])]},
            "feedback.0.acceptedSuggestions.0.id",
        ),
        (
            {
                "feedback": [
                    item(outcome="overridden", overrideReason={"userComment": "on\u0000 it"})
                ]
            },
            "feedback.0.overrideReason.userComment",
        ),
        (
            {
                "feedback": [
                    item(outcome="overridden", overrideReason={"reason": {"code": "a\u0000"}})
                ]
            },
            "feedback.0.overrideReason.reason.code",
        ),
    ],
)
def test_invalid_feedback_is_400_naming_the_field(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 400
    issue = response.get_json()["issue"][0]
    assert issue["expression"] == [field]


@pytest.mark.parametrize(
    "moment",
    ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"],
)
def test_a_well_formed_time_beyond_the_calendar_in_utc_is_400(
    client: FlaskClient, moment: str
) -> None:
    response = client.post(FEEDBACK, json={"feedback": [item(outcomeTimestamp=moment)]})
    assert response.status_code == 400
    issue = response.get_json()["issue"][0]
    assert issue["expression"] == ["feedback.0.outcomeTimestamp"]
    assert "years 1 to 9999" in issue["diagnostics"]


def test_the_latest_time_that_fits_is_stored(client: FlaskClient) -> None:
    response = client.post(
        FEEDBACK, json={"feedback": [item(outcomeTimestamp="9999-12-31T11:59:59-12:00")]}
    )
    assert response.status_code == 200


EPIC_CATEGORY = "com.epic.cdshooks.feedback.overrideReason.reasonCategory"


def test_epic_reasons_in_fhir_extension_form_are_read(client: FlaskClient) -> None:
    """Epic's own reason as a list of {url, value[x]} (FHIR's extension form) counts as a
    reason; a list with no category is no reason, and the error names the member sent."""
    for value in ({"valueString": "45"}, {"valueCoding": {"code": "45"}}):
        coded = {"extension": [{"url": EPIC_CATEGORY, **value}]}
        body = {
            "feedback": [item(outcome="overridden", acceptedSuggestions=..., overrideReasons=coded)]
        }
        assert client.post(FEEDBACK, json=body).status_code == 200
    empty = {"extension": [{"url": "other", "valueString": "x"}]}
    body = {
        "feedback": [item(outcome="overridden", acceptedSuggestions=..., overrideReasons=empty)]
    }
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["feedback.0.overrideReasons"]


def test_an_epic_reason_coding_keeps_its_display() -> None:
    """With the category sent as a valueCoding, its display names the reason when Epic sends
    no reasonDisplay of its own (the report shows it)."""
    coding = {"code": "45", "display": "Patient declined"}
    reasons = {"extension": [{"url": EPIC_CATEGORY, "valueCoding": coding}]}
    read = FeedbackItem.model_validate(
        item(outcome="overridden", acceptedSuggestions=..., overrideReasons=reasons)
    )
    assert read.overrideReason is not None and read.overrideReason.reason is not None
    assert (read.overrideReason.reason.code, read.overrideReason.reason.display) == (
        "45", "Patient declined",
    )  # fmt: skip
