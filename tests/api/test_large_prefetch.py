"""The largest full prefetch our templates ask for fits the default request limit.

Every prefetch template caps its search with `_count`; a long stay fills them. Here each Bundle
of a real composed request is grown to its template's `_count` with older copies of its own
entries, each carrying a 2 KB narrative as EHRs send them, and posted with default settings.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from cds_service.api.runtime import current_runtime
from cds_service.demo import hook_request, shift_dates
from cds_service.settings import Settings
from tests.conftest import load_fixture

SERVICE = "cytokine-storm-patient-view"
NARRATIVE = {
    "status": "generated",
    "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * 2000 + "</div>",
}


def filled_to_every_count(request: dict[str, Any], templates: dict[str, str]) -> int:
    """Grow each prefetch Bundle to its template's _count; the number of entries sent."""
    sent = 0
    for key, template in templates.items():
        count = re.search(r"_count=(\d+)", template)
        bundle = request["prefetch"].get(key)
        if count is None or not isinstance(bundle, dict) or not bundle.get("entry"):
            continue  # the Patient, and searches the chart has nothing for
        originals = bundle["entry"]
        grown = []
        for i in range(int(count.group(1))):
            older = shift_dates(
                copy.deepcopy(originals[i % len(originals)]),
                timedelta(hours=-12 * (i // len(originals))),
            )
            older["resource"]["id"] = f"{older['resource']['id']}-c{i}"
            older["resource"]["text"] = NARRATIVE
            grown.append(older)
        bundle["entry"] = grown
        sent += len(grown)
    return sent


def test_a_long_stays_full_prefetch_is_read_under_the_default_limit(
    client: FlaskClient,
) -> None:
    with client.application.app_context():
        service = current_runtime().services[SERVICE]
    patient = load_fixture("patients/lab-bench.json")
    patient["entry"] += load_fixture("chart/lab-bench-covid19.json")["entry"]
    request = hook_request(service, patient, now=datetime.now(UTC))
    ordinary = client.post(f"/cds-services/{SERVICE}", json=request).get_json()

    sent = filled_to_every_count(request, service.prefetch)
    body = json.dumps(request).encode()
    limit = Settings.model_fields["max_request_bytes"].default
    assert sent > 1000
    assert 3 * 1024 * 1024 < len(body) < limit  # well past the old 1 MiB default

    response = client.post(
        f"/cds-services/{SERVICE}", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    # Older copies change no newest result: the same cards as the ordinary request.
    summaries = [card["summary"] for card in response.get_json()["cards"]]
    assert summaries == [card["summary"] for card in ordinary["cards"]]
