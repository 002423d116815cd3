"""Each service reads its own hook's context, once, into the context the decision takes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cds_service.hooks.services import read_order_select, read_order_sign, read_patient_view
from tests.conftest import load_fixture

ORDERS = load_fixture("orders/anakinra.json")
BASE = {"userId": "Practitioner/p1", "patientId": " p1 ", "encounterId": "e1"}


def test_patient_view_reads_who_and_where_and_ignores_orders() -> None:
    context = read_patient_view({**BASE, "draftOrders": ORDERS, "selections": ["x"]})
    assert (context.hook, context.patient_id, context.encounter_id, context.user_id) == (
        "patient-view",
        "p1",  # stripped
        "e1",
        "Practitioner/p1",
    )
    assert context.draft_orders is None and context.selections is None


def test_order_sign_reads_the_draft_orders_as_sent() -> None:
    context = read_order_sign({**BASE, "draftOrders": ORDERS})
    assert context.hook == "order-sign"
    assert context.draft_orders == ORDERS and context.selections is None


def test_draft_orders_as_one_order_alone_are_read_leniently() -> None:
    order = ORDERS["entry"][0]["resource"]
    assert read_order_sign({**BASE, "draftOrders": order}).draft_orders == order


def test_order_select_reads_the_selections() -> None:
    selected = ["MedicationRequest/a", "MedicationRequest/b"]
    context = read_order_select({**BASE, "draftOrders": ORDERS, "selections": selected})
    assert context.hook == "order-select"
    assert context.selections == frozenset(selected)
    # Nothing selected yet: nothing to judge.
    empty = read_order_select({**BASE, "draftOrders": ORDERS, "selections": []})
    assert empty.selections == frozenset()
    # Missing (the hook requires it): None, every draft order is judged, as at order-sign.
    assert read_order_select({**BASE, "draftOrders": ORDERS}).selections is None


@pytest.mark.parametrize(
    ("reader", "context", "field"),
    [
        (read_patient_view, {"userId": "Practitioner/p1"}, "patientId"),
        (read_patient_view, {**BASE, "patientId": "  "}, "patientId"),
        (read_order_sign, BASE, "draftOrders"),
        # A Patient where the draft orders belong means no order: not an empty "all clear".
        (read_order_sign, {**BASE, "draftOrders": {"resourceType": "Patient"}}, "draftOrders"),
        (read_order_sign, {**BASE, "draftOrders": {"resourceType": ["Bundle"]}}, "draftOrders"),
        (read_order_select, {**BASE, "draftOrders": ORDERS, "selections": "one"}, "selections"),
    ],
)
def test_a_context_that_cannot_mean_anything_names_the_field(
    reader: object, context: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        reader(context)  # type: ignore[operator]
    assert raised.value.errors()[0]["loc"][0] == field
