"""What the cytokine profile page costs, per fixture patient.

- hook path: signing the link, and building the stored profile (plus its JSON size), both paid
  inside the hook call before the audit write;
- page: rendering the HTML with its SVG charts the first time (cold), then from the page cache,
  and GET /profile/<token> through the Flask app with its SQLite store (cold and cached).

    python bench/profile_page.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask.testing import FlaskClient

from cds_service.api.runtime import EXTENSION_KEY
from cds_service.app import create_app
from cds_service.demo import FIXTURE_TIME
from cds_service.profile.links import ProfileLinks
from cds_service.profile.page import ProfilePages
from cds_service.profile.snapshot import build_profile, profile_json
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from tests.conftest import decide_bundle, hook_call

PATIENTS = (
    "css-il1-mals",
    "css-ifng-hlh",
    "css-il6-covid",
    "css-immunoparalysis",
    "css-mixed",
    "css-multiplex-needed",
    "css-stale-cytokines",
)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "patients"


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(auth="off", data_dir=Path(data_dir))  # type: ignore[call-arg]
        app = create_app(settings)
        runtime: Runtime = app.extensions[EXTENSION_KEY]
        links = ProfileLinks(b"b" * 32, 3600)
        sign = median_ms(lambda: links.issue("https://cds.example.org"), 1000)
        print(f"sign a link: {sign * 1000:.0f} µs (median of 1000)\n")
        print(
            f"{'patient':22} {'snapshot':>9} {'JSON':>8} {'render':>8} {'cached':>8} "
            f"{'GET cold':>9} {'GET hit':>8} {'HTML':>8}"
        )
        client = app.test_client()
        for patient in PATIENTS:
            print(measure(runtime, client, patient, args.repeat))


def measure(runtime: Runtime, client: FlaskClient, patient: str, repeat: int) -> str:
    bundle = json.loads((FIXTURES / f"{patient}.json").read_text(encoding="utf-8"))
    outcome = decide_bundle(runtime.knowledge, bundle, FIXTURE_TIME)
    a, e = outcome.assessment, outcome.evidence
    built = build_profile(a, e, runtime.rules, runtime.catalog)
    size = len(json.dumps(profile_json(built)))
    snap = median_ms(lambda: profile_json(build_profile(a, e, runtime.rules, runtime.catalog)), 200)
    notice = runtime.cards.kit.common.notice
    render = median_ms(lambda: ProfilePages(notice).render(built), repeat)
    pages = ProfilePages(notice)
    pages.profile("x" * 22, built)
    hit = median_ms(lambda: pages.profile("x" * 22, built), 1000)
    # Through the app: a real hook call stores the profile; the first GET renders it.
    (card,) = hook_call(client, "patient-view", patient).get_json()["cards"]
    path = "/profile/" + card["links"][0]["url"].rsplit("/", 1)[1]
    started = time.perf_counter()
    html = client.get(path).get_data()
    cold = (time.perf_counter() - started) * 1000
    get_hit = median_ms(lambda: client.get(path), 200)
    return (
        f"{patient:22} {snap:7.2f}ms {size / 1024:6.1f}kB {render:6.0f}ms "
        f"{hit * 1000:6.1f}µs {cold:7.0f}ms {get_hit:6.2f}ms {len(html) / 1024:6.0f}kB"
    )


if __name__ == "__main__":
    main()
