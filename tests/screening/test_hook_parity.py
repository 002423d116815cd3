"""A patient gets the same cards from a patient-view hook call and from a screening run.

The fixture patients, dated to now, go once through POST /cds-services/cytokine-storm-patient-view
with prefetch (as `cytokine-cds demo-request` composes it) and once, as a Bulk Data export,
through `cytokine-cds screen`. The cards are compared whole, except what differs by design:
uuids (random in a hook answer, derived from the content in a screening run), the time a draft
order is authored (the hook answers a moment later than the run) and its requester (the hook's
user; a screening run has none).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app
from cds_service.api.runtime import current_runtime
from cds_service.demo import FIXTURE_TIME, hook_request, shift_dates
from cds_service.evidence.bundles import entry_resources
from cds_service.settings import Settings
from tests.conftest import load_fixture
from tests.screening.conftest import EXPECTED_CARDS, card_type, screen

SERVICE = "cytokine-storm-patient-view"
_DIFFERS_BY_DESIGN = {"uuid", "authoredOn", "requester"}


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items() if k not in _DIFFERS_BY_DESIGN}
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    return value


def test_hook_call_and_screening_give_the_same_cards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    export = tmp_path / "export"
    export.mkdir()
    by_type: dict[str, list[str]] = defaultdict(list)
    for name in EXPECTED_CARDS:
        bundle = load_fixture(f"patients/{name}.json")
        for resource in shift_dates(entry_resources(bundle), now - FIXTURE_TIME):
            by_type[resource["resourceType"]].append(json.dumps(resource))
    for kind, lines in by_type.items():
        (export / f"{kind}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")

    out = tmp_path / "out.ndjson"
    run = screen(capsys, export, out, "--workers", "1", "--as-of", now.isoformat())
    assert run.code == 0, run.stderr
    screened = {row["patient"]: row["cards"] for row in run.rows()}

    # The profile page's links are signed per hook call and served by the service: a screening
    # run has none, so the hook side runs without the page.
    app = create_app(Settings(auth="off", profile_page=False))
    with app.test_client() as client:
        with app.app_context():
            service = current_runtime().services[SERVICE]
        compared = 0
        for name, expected in EXPECTED_CARDS.items():
            body = hook_request(service, load_fixture(f"patients/{name}.json"), now=now)
            response = client.post(f"/cds-services/{SERVICE}", json=body)
            assert response.status_code == 200, response.get_json()
            hook_cards = response.get_json()["cards"]
            assert [card_type(c) for c in hook_cards] == expected, name
            assert _normalised(screened.get(name, [])) == _normalised(hook_cards), name
            compared += len(hook_cards)
    assert compared >= 6
