"""The page as rendered HTML: what it shows, that it loads nothing, and that it escapes."""

from __future__ import annotations

import re

import pytest

from cds_service.profile.page import ProfilePages
from cds_service.profile.snapshot import StoredProfile, build_profile
from cds_service.runtime import Runtime
from tests.profile.conftest import SUBTYPE_PATIENTS, evaluated
from tests.profile.page_reader import read_page

NOTICE = "Decision support, not a diagnosis: test notice."
AXES = [
    "IL-1 family (IL-1β, IL-18, ferritin)",
    "IFN-γ (IFN-γ, CXCL9, sCD25)",
    "IL-6 (IL-6, CRP)",
    "Immune status (monocyte HLA-DR, lymphocytes)",
    "Signs of hyperinflammation and cytopenias (HLH-2004)",
]
COLOUR = re.compile(r"#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})\b")


def stored(runtime: Runtime, patient: str) -> StoredProfile:
    outcome = evaluated(runtime, patient)
    return build_profile(outcome.assessment, outcome.evidence, runtime.rules, runtime.catalog)


def figure_text(texts: list[str]) -> str:
    return " ".join(" ".join(texts).split())


def test_il1_page_shows_rule_charts_values_history_and_sources(runtime: Runtime) -> None:
    html = ProfilePages(NOTICE).render(stored(runtime, "css-il1-mals"))
    page = read_page(html)
    assert page.ids["pattern"] == (
        "Sepsis: the recorded data meet the PROVIDE MALS criterion in sepsis "
        "(ferritin > 4,420 ng/mL)"
    )
    assert page.ids["setting-applied"].startswith("Sepsis (Condition Sepsis (A41.9)")
    assert (
        page.ids["rationale"] == "Only the IL-1 family (IL-1β, IL-18, ferritin) axis is elevated."
    )
    assert page.ids["subtype"] == "il1-driven"
    assert page.ids["decision"].startswith("Single-axis rule")
    assert page.ids["notice"] == NOTICE
    # One chart per axis (and immune status, and the signs), each titled by its group.
    ratio = [figure_text(v) for k, v in page.figures.items() if k.startswith("axis-")]
    assert len(ratio) == len(AXES)
    for title, texts in zip(AXES, ratio, strict=True):
        assert title in texts
    il1 = figure_text(page.figures["axis-0"])
    assert "138,500 pg/mL · 2.00× · past threshold" in il1  # IL-18 against 69,250 pg/mL
    assert "12,500 ng/mL · 2.83× · past threshold" in il1  # ferritin against 4,420 ng/mL
    assert "4.1 pg/mL · 0.306× · not past threshold" in il1  # IL-1β against 2 × 6.7 pg/mL
    assert "1× = threshold" in il1 and "side that fires" in il1
    # The values table, with the numbers the rules used.
    ferritin = page.row("Ferritin (MALS range)")
    assert ferritin["result"] == "12,500 ng/mL"
    assert ferritin["threshold"] == "> 4,420 ng/mL"
    assert ferritin["ratio"] == "2.83×"
    assert ferritin["verdict"] == "past threshold"
    assert ferritin["measured"] == "2026-11-20 06:00 UTC (6 h before)"
    assert page.row("IL-1β")["threshold"] == "> 2 × upper reference limit (13.4 pg/mL)"
    assert page.row("IL-10")["result"] == "no result"
    assert page.row("Monocyte HLA-DR (immunoparalysis range)")["threshold"] == (
        "< 5,000 molecules/cell"
    )
    # A time series per analyte with results; ferritin has two.
    assert "history-ferritin" in page.figures
    assert "2 result(s), latest 12,500 ng/mL" in page.svg_labels["history-ferritin"]
    ferritin_series = figure_text(page.figures["history-ferritin"])
    assert "> 4,420 ng/mL: Ferritin (MALS range)" in ferritin_series
    assert "≥ 500 ng/mL: Ferritin" in ferritin_series and "assessment" in ferritin_series
    # Sources: citations with DOI links.
    assert "https://doi.org/10.1186/s12916-017-0930-5" in page.links  # Kyriazopoulou 2017
    assert "https://doi.org/10.1016/j.xcrm.2022.100817" in page.links  # PROVIDE


def test_the_page_says_the_settings_reminders_and_the_notes_beside_a_draft(
    runtime: Runtime,
) -> None:
    """What the card says beside its advice, the page says too: sepsis's rule against IL-6
    blockade, and the boxed warning beside tocilizumab for CRS with an infection recorded."""
    sepsis = ProfilePages(NOTICE).render(stored(runtime, "css-il1-mals"))
    assert "Not advised here:</strong> No IL-6 blockade in bacterial sepsis" in sepsis
    car_t = ProfilePages(NOTICE).render(stored(runtime, "case-cart-sepsis"))
    assert "Note: an active infection is recorded (boxed warning for serious infections)" in car_t
    assert "No IL-6 blockade" not in car_t


def test_less_than_criteria_fire_below_the_threshold(runtime: Runtime) -> None:
    page = read_page(ProfilePages(NOTICE).render(stored(runtime, "css-immunoparalysis")))
    immune = figure_text(page.figures["axis-3"])
    assert "3,200 molecules/cell · 0.640× · past threshold" in immune
    row = page.row("Monocyte HLA-DR (immunoparalysis range)")
    assert (row["ratio"], row["verdict"]) == ("0.640×", "past threshold")


def test_stale_and_missing_values_are_shown_as_such(runtime: Runtime) -> None:
    page = read_page(ProfilePages(NOTICE).render(stored(runtime, "css-stale-cytokines")))
    il6 = page.row("IL-6")
    assert il6["verdict"] == "too old to count"
    assert il6["result"] == "300 pg/mL" and il6["ratio"] == "3.75×"
    assert il6["measured"] == "2026-11-15 06:00 UTC (5 days before)"
    il6_chart = figure_text(page.figures["axis-2"])
    assert "300 pg/mL · 3.75× · too old to count" in il6_chart
    assert "too old to count (drawn for context)" in il6_chart  # legend: the open square
    assert "no result" in figure_text(page.figures["axis-3"])  # no HLA-DR, no lymphocytes
    assert page.ids["pattern"] == (
        "No clinical setting recorded: recorded results suggest hyperinflammation; "
        "no recent cytokine result"
    )


@pytest.mark.parametrize("patient", sorted(SUBTYPE_PATIENTS))
def test_every_page_is_self_contained_and_black_and_white(runtime: Runtime, patient: str) -> None:
    html = ProfilePages(NOTICE).render(stored(runtime, patient))
    page = read_page(html)
    assert not page.tags & {"script", "img", "link", "iframe", "object", "embed", "image"}
    for tag, name, value in page.attributes:
        assert not name.startswith("on"), (tag, name)  # no event handlers
        if name in ("src", "srcset", "action", "formaction"):
            pytest.fail(f"{tag} loads {value}")
        if name == "xlink:href":
            assert value.startswith("#"), value  # matplotlib's markers: within the page
        if name == "href":
            assert value.startswith("https://doi.org/") or value.startswith("#"), value
    assert "url(http" not in html and "@import" not in html and "@font-face" not in html
    # Only greys: the charts read the same printed in black and white.
    for match in COLOUR.finditer(html):
        red, green, blue = match.groups()
        assert red == green == blue, match.group(0)
    assert len([f for f in page.figures if f.startswith("axis-")]) == 5


def test_values_from_the_rules_file_are_escaped(runtime: Runtime) -> None:
    profile = stored(runtime, "css-il1-mals")
    a = profile.assessment
    evil = '<script>alert("x")</script> $\\frac{1}{2}$ & "quoted"'
    il1 = a.axes[0]
    first = il1.pivotal[0].model_copy(update={"label": evil})
    axes = (il1.model_copy(update={"pivotal": (first, *il1.pivotal[1:])}), *a.axes[1:])
    profile = profile.model_copy(
        update={"assessment": a.model_copy(update={"axes": axes, "rationale": evil})}
    )
    html = ProfilePages(NOTICE).render(profile)
    assert "<script" not in html
    assert "&lt;script&gt;" in html  # in the table, the rationale and the SVG text
    page = read_page(html)
    assert page.ids["rationale"] == evil
    assert evil in figure_text(page.figures["axis-0"])  # mathtext off: "$" stays a dollar
    assert page.row(evil)["result"] == "138,500 pg/mL"


def test_rendered_pages_are_cached_per_assessment(runtime: Runtime) -> None:
    pages = ProfilePages(NOTICE, cache_size=2)
    profile = stored(runtime, "css-il1-mals")
    first = pages.profile("a" * 22, profile)
    assert pages.cached("a" * 22) is first
    pages.profile("b" * 22, stored(runtime, "css-mixed"))
    pages.profile("c" * 22, stored(runtime, "css-ifng-hlh"))
    assert pages.cached("a" * 22) is None  # the oldest is dropped
    assert pages.cached("c" * 22) is not None


@pytest.mark.parametrize(
    ("status", "heading"),
    [
        (403, "This link has expired"),
        (404, "This profile is no longer available"),
        (503, "The profile is unavailable right now"),
    ],
)
def test_refusal_pages_say_what_happened_and_nothing_else(status: int, heading: str) -> None:
    page = read_page(ProfilePages(NOTICE).refused(status))  # type: ignore[arg-type]
    assert page.ids["refusal"] == heading
    assert not page.figures and not page.rows and not page.links


def test_pages_render_correctly_from_several_threads_at_once(runtime: Runtime) -> None:
    """gunicorn's gthread workers serve several requests at once: charts drawn concurrently
    (serialised inside matplotlib use by a lock) come out whole and identical in content."""
    from concurrent.futures import ThreadPoolExecutor

    profile = stored(runtime, "css-multiplex-needed")
    pages = ProfilePages(NOTICE)
    with ThreadPoolExecutor(max_workers=4) as pool:
        rendered = list(pool.map(lambda _: read_page(pages.render(profile)), range(4)))
    first = rendered[0]
    for page in rendered:
        assert page.rows == first.rows
        assert {k: figure_text(v) for k, v in page.figures.items()} == {
            k: figure_text(v) for k, v in first.figures.items()
        }


def test_time_series_axes_are_labelled_in_plain_numbers(runtime: Runtime) -> None:
    """IL-18 at 600 pg/mL against 69,250 pg/mL is drawn on a log scale, labelled 1,000 and
    10,000 (matplotlib's own log labels are mathtext, which is off)."""
    page = read_page(ProfilePages(NOTICE).render(stored(runtime, "css-il6-covid")))
    il18 = figure_text(page.figures["history-il18"])
    assert "pg/mL (log scale)" in il18
    assert "1,000" in il18 and "10,000" in il18
    for figure in page.figures.values():
        text = figure_text(figure)
        assert "$" not in text and "mathdefault" not in text and "^{" not in text, text
    assert "time (UTC)" in figure_text(page.figures["history-temperature"])
