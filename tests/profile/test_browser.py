"""The profile page in a real browser: headless Chromium (the system's, Debian packages
`chromium` and `chromium-driver`) driven by Selenium, against a real `cytokine-cds serve`.

For each subtype fixture patient: the hook call's card link opens a page with the charts and the
values table, whose numbers match the card's own evidence table; a screenshot is kept in the
test's temp dir. An expired link shows the 403 page. Skipped, with the reason, on a machine
without Chromium (`.ci/run` installs it when it can).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.composition import build_runtime
from cds_service.demo import hook_request
from cds_service.profile.links import ProfileLinks
from cds_service.settings import Settings
from tests.conftest import load_fixture
from tests.profile.conftest import SUBTYPE_PATIENTS
from tests.servers import cds_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SECRET = "browser-test-profile-secret-0123456789"
SERVICE_ID = "cytokine-storm-patient-view"
# Flags for a sandboxed CI machine with no network: no background traffic, no first-run UI.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
)
# A row of the card's Markdown evidence table: | Marker | Result | Measured | Threshold | Judged |
CARD_ROW = re.compile(r"^\| (?P<marker>[^|]+?) \| (?P<result>[^|]+?) \|", re.M)


def _missing_browser() -> str | None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return (
            f"no Chromium here ({CHROMIUM} and {CHROMEDRIVER}); install the Debian packages "
            "`chromium` and `chromium-driver` (.ci/run does when apt-get is available)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


pytestmark = pytest.mark.skipif(
    _missing_browser() is not None, reason=_missing_browser() or "browser available"
)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    # Never let selenium-manager look for (or download) a driver or browser.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=1280,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    env = {"CYTOKINE_CDS_DATA_DIR": str(tmp_path / "data"), "CYTOKINE_CDS_PROFILE_SECRET": SECRET}
    # Two workers: the page is often served by another worker than the one that stored it.
    with cds_service(env=env, workers=2) as base:
        yield base


def card_for(base: str, patient: str) -> dict[str, Any]:
    service = build_runtime(Settings(auth="off")).services[SERVICE_ID]
    body = hook_request(service, load_fixture(f"patients/{patient}.json"), now=datetime.now(UTC))
    response = requests.post(f"{base}/cds-services/{SERVICE_ID}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    return card  # type: ignore[no-any-return]


def card_evidence(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(marker, result) of each row of the card's evidence table, Markdown escapes removed."""
    rows = []
    for match in CARD_ROW.finditer(card["detail"]):
        marker = re.sub(r"\\(.)", r"\1", match["marker"])
        if marker not in ("Marker", "---"):
            rows.append((marker, re.sub(r"\\(.)", r"\1", match["result"])))
    # The multiplex card has no table: its score's counted items say what decided.
    assert rows or "(counted: " in card["detail"], card["detail"]
    return rows


def full_page_screenshot(driver: Any, path: Path) -> None:
    from selenium.webdriver.common.by import By

    height = driver.find_element(By.TAG_NAME, "body").size["height"]
    driver.set_window_size(1280, min(int(height) + 120, 12000))
    assert driver.save_screenshot(str(path)), path
    driver.set_window_size(1280, 1000)


def page_problems(driver: Any) -> list[str]:
    """Console messages at warning level or worse (a CSP violation would be one)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING")
    ]


def test_each_subtype_card_opens_its_profile_in_chromium(
    served: str, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    for patient, topic in SUBTYPE_PATIENTS.items():
        card = card_for(served, patient)
        # Letters and digits; a setting card carries its state's topic (sepsis MALS).
        expected = {"css-il1-mals": "mals"}.get(patient, topic.replace("-", ""))
        assert card["source"]["topic"]["code"] == expected
        (link,) = card["links"]
        url = link["url"]
        assert url.startswith(f"{served}/profile/") and patient not in url

        browser.get(url)
        assert browser.title.startswith("Cytokine profile: ")
        assert browser.find_element(By.ID, "subtype").text == topic
        assert "not a diagnosis" in browser.find_element(By.ID, "notice").text
        ratio_charts = browser.find_elements(By.CSS_SELECTOR, "figure.ratio-chart svg")
        assert len(ratio_charts) == 5
        for chart in ratio_charts:
            assert chart.is_displayed()
            assert chart.size["width"] > 400 and chart.size["height"] > 100
        history = browser.find_elements(By.CSS_SELECTOR, "figure.history-chart svg")
        assert history and all(chart.is_displayed() for chart in history)
        chart_text = " ".join(
            " ".join(svg.get_attribute("textContent").split()) for svg in ratio_charts
        )
        page_rows = [
            (
                row.find_element(By.CSS_SELECTOR, "td.marker").text.removesuffix(" (supportive)"),
                row.find_element(By.CSS_SELECTOR, "td.result").text,
            )
            for row in browser.find_elements(By.CSS_SELECTOR, "#values-table tbody tr")
            if not row.get_attribute("class").startswith("group")
        ]
        # Every value the card's own evidence table shows is in the page's table and charts.
        for marker, result in card_evidence(card):
            assert (marker, result) in page_rows, (patient, marker, result)
            assert result.removesuffix(" (preliminary)") in chart_text, (patient, result)
        assert browser.find_elements(By.CSS_SELECTOR, "ol.sources a[href^='https://doi.org/']")
        assert page_problems(browser) == [], patient
        full_page_screenshot(browser, tmp_path / f"{patient}.png")
        assert (tmp_path / f"{patient}.png").stat().st_size > 50_000

    # The page's headers, as a browser receives them from gunicorn.
    headers = requests.get(url, timeout=30).headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Security-Policy"].startswith("default-src 'none';")


def test_an_expired_link_shows_the_403_page(served: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    card = card_for(served, "css-il1-mals")
    (link,) = card["links"]
    assessment_id = link["url"].rsplit("/", 1)[1].split(".")[0]
    # Signed with the service's secret two hours ago: past the default one-hour lifetime.
    past = ProfileLinks(SECRET.encode(), 3600, clock=lambda: time.time() - 7200)
    expired = f"{served}/profile/{past.sign(assessment_id)}"
    assert requests.get(expired, timeout=30).status_code == 403
    browser.get(expired)
    assert browser.find_element(By.ID, "refusal").text == "This link has expired"
    assert not browser.find_elements(By.TAG_NAME, "svg")
    assert not browser.find_elements(By.TAG_NAME, "table")
    full_page_screenshot(browser, tmp_path / "expired.png")
    # The fresh link to the same profile still opens it.
    browser.get(link["url"])
    assert browser.find_element(By.ID, "subtype").text == "il1-driven"
