"""The HTML worklist in a real browser (the system's headless Chromium, as the profile page's
browser test drives it): it renders every row, sorts by a column on click, and loads nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.profile.test_browser import _missing_browser, browser  # noqa: F401 (fixture)
from tests.screening.conftest import EXPECTED_CARDS, screen

pytestmark = pytest.mark.skipif(
    _missing_browser() is not None, reason=_missing_browser() or "browser available"
)
LISTED = sorted(f"planted-{name}" for name, cards in EXPECTED_CARDS.items() if cards)


def _column(driver: Any, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")
    return [row.find_elements(By.TAG_NAME, "td")[index].text for row in rows]


def test_the_worklist_page_sorts_by_a_clicked_column(
    browser: Any,  # noqa: F811
    census: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from selenium.webdriver.common.by import By

    run = screen(capsys, census, tmp_path / "worklist.html", "--format", "html", "--workers", "1")
    assert run.code == 0, run.stderr
    browser.get(run.out.as_uri())
    assert _column(browser, 1)[0] == "planted-css-immunoparalysis"  # warning before info
    headings = browser.find_elements(By.CSS_SELECTOR, "#worklist th")
    headings[1].click()
    assert _column(browser, 1) == LISTED
    headings[1].click()
    assert _column(browser, 1) == LISTED[::-1]
    headings[0].click()  # urgency sorts by rank: warning before info, not alphabetically
    assert _column(browser, 0)[0] == "warning"
    assert "IL-6 320 pg/mL (> 80 pg/mL)" in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(tmp_path / "worklist.png"))
    # Nothing fetched beyond the file itself: a static page.
    entries = browser.execute_script("return performance.getEntriesByType('resource').length")
    assert entries == 0
