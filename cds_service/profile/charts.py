"""The profile page's charts: SVG drawn by matplotlib's object API (no pyplot, no global figure).

Two kinds:
- `ratio_chart`: each marker of one axis as result ÷ threshold on a log scale, the threshold at
  1, the side where the marker fires hatched (right of 1 for ">" criteria, left for "<"), and
  stale, missing and bound ("<5") results drawn as such.
- `history_chart`: one analyte's results over the evidence window, with its thresholds, the
  time of the assessment and the part of the window too old to count.

Readable in black and white: states differ by marker shape and fill, thresholds by line style,
zones by hatching; every point also carries its value as text. Text stays text in the SVG
(svg.fonttype "none"): searchable, selectable and read by screen readers. matplotlib escapes it.
matplotlib does not promise thread safety, so a lock serialises drawing within a process
(pages are cached, so a chart is drawn once per assessment and worker).
"""

from __future__ import annotations

import io
import math
import re
import textwrap
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import matplotlib as mpl
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator
from matplotlib.typing import LineStyleType as LineStyle
from matplotlib.typing import RcKeyType

from cds_service.rules.assessment import MarkerState
from cds_service.rules.engine import number

_LOCK = threading.Lock()
_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # real <text>, escaped by matplotlib's XML writer
    "svg.hashsalt": None,  # random ids, so several SVGs inline in one page never share one
    "text.parse_math": False,  # a "$" in a label is a dollar sign, not mathtext
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "Liberation Sans"],
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.edgecolor": "0.25",
    "hatch.linewidth": 0.6,
    "timezone": "UTC",
}
_INK = "black"
_MUTED = "0.45"
_HATCH_EDGE = "0.6"
_OLD_ZONE = "0.9"
_SVG_START = re.compile(r"<svg\b")
_THRESHOLD_STYLES: tuple[LineStyle, ...] = ("--", ":", "-.")

State = MarkerState


@dataclass(frozen=True)
class RatioRow:
    """One marker on an axis chart."""

    label: str
    state: State
    ratio: float | None  # result ÷ threshold; None when there is nothing to place
    fires_above: bool  # ">" criteria fire right of the threshold, "<" criteria left of it
    bound: Literal["<", ">"] | None  # the result is a bound: the true value lies that way
    text: str  # what is written beside the row, e.g. "4,800 ng/mL · 1.09× · past threshold"


@dataclass(frozen=True)
class SeriesPoint:
    at: datetime
    value: float
    bound: Literal["<", ">"] | None = None
    preliminary: bool = False


@dataclass(frozen=True)
class SeriesThreshold:
    label: str  # e.g. "Ferritin (MALS range) > 4,420 ng/mL"
    value: float


# Markers, by state (shape and fill, never colour alone)

_STATE_STYLE: dict[str, dict[str, Any]] = {
    "above": {"marker": "o", "markerfacecolor": _INK, "markeredgecolor": _INK},
    "below": {"marker": "o", "markerfacecolor": "white", "markeredgecolor": _INK},
    "indeterminate": {"marker": "D", "markerfacecolor": "white", "markeredgecolor": _INK},
    "stale": {"marker": "s", "markerfacecolor": "white", "markeredgecolor": _MUTED},
}
_BOUND_MARKER = {"<": "<", ">": ">"}  # triangles pointing where the true value lies
_STATE_LEGEND = {
    "above": "past threshold (fires)",
    "below": "not past threshold",
    "indeterminate": "cannot tell (result is a bound)",
    "stale": "too old to count (drawn for context)",
}


def ratio_chart(title: str, rows: Sequence[RatioRow], description: str) -> str:
    """Markers of one axis against their thresholds, as an inline SVG element.

    Fixed layout (inches), so that the charts of one page line up: a label column, the plot,
    and a column with each result in words.
    """
    placed = [r.ratio for r in rows if r.ratio is not None and r.ratio > 0]
    low = min([0.1, *placed]) / 2.5
    high = max([10.0, *placed]) * 2.5
    labels_in, plot_in, values_in = 2.6, 3.0, 3.3
    top_in, row_in, bottom_in = 0.35, 0.4, 1.0
    width = labels_in + plot_in + values_in
    height = top_in + row_in * len(rows) + bottom_in
    with _drawing() as figure:
        figure.set_size_inches(width, height)
        ax = figure.add_axes(
            (labels_in / width, bottom_in / height, plot_in / width, row_in * len(rows) / height)
        )
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        figure.text(0.01, 1 - 0.22 / height, title, fontweight="bold", fontsize=10, va="center")
        ax.set_xlabel("result ÷ threshold (log scale; 1× = threshold)")
        ax.yaxis.set_major_locator(FixedLocator(list(range(len(rows)))))
        ax.set_yticklabels([_wrapped(r.label, 30) for r in rows])
        ax.tick_params(axis="y", length=0)
        ax.xaxis.set_major_locator(FixedLocator(_ratio_ticks(low, high)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}×"))
        for spine in ("top", "right"):
            ax.spines[spine].set_visible(False)
        ax.axvline(1.0, color=_INK, linestyle="--", linewidth=1.2, zorder=2)
        states = set()
        for y, row in enumerate(rows):
            zone = (1.0, high) if row.fires_above else (low, 1.0)
            ax.fill_betweenx(
                [y - 0.34, y + 0.34],
                *zone,
                facecolor="none",
                edgecolor=_HATCH_EDGE,
                hatch="////",
                linewidth=0,
                zorder=1,
            )
            if row.ratio is not None and row.ratio > 0 and row.state in _STATE_STYLE:
                style = dict(_STATE_STYLE[row.state])
                if row.bound:
                    style["marker"] = _BOUND_MARKER[row.bound]
                ax.plot([row.ratio], [y], linestyle="none", markersize=9, zorder=3, **style)
                states.add(row.state)
            else:
                ax.text(
                    math.sqrt(low * high),
                    y,
                    _absent(row.state),
                    ha="center",
                    va="center",
                    style="italic",
                    color=_MUTED,
                    zorder=3,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
                )
            ax.annotate(
                _wrapped(row.text, 52),
                xy=(1.0 + 0.12 / plot_in, y),
                xycoords=("axes fraction", "data"),
                va="center",
                ha="left",
                fontsize=8.5,
                annotation_clip=False,
            )
        handles: list[Artist] = [
            Line2D(
                [],
                [],
                linestyle="none",
                markersize=8,
                label=_STATE_LEGEND[state],
                **_STATE_STYLE[state],
            )
            for state in _STATE_LEGEND
            if state in states
        ]
        handles.append(Line2D([], [], color=_INK, linestyle="--", label="threshold"))
        handles.append(
            Patch(facecolor="none", edgecolor=_HATCH_EDGE, hatch="////", label="side that fires")
        )
        if any(r.bound for r in rows if r.ratio is not None):
            bound = Line2D(
                [],
                [],
                linestyle="none",
                marker="<",
                markerfacecolor="white",
                markeredgecolor=_INK,
                label="reported as a bound (< or >)",
            )
            handles.append(bound)
        figure.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(labels_in / width - 0.02, 0.0),
            ncol=3,
            frameon=False,
            fontsize=8,
            handlelength=1.6,
            columnspacing=1.2,
        )
        return _svg(figure, description)


def history_chart(
    title: str,
    unit: str,
    points: Sequence[SeriesPoint],
    thresholds: Sequence[SeriesThreshold],
    as_of: datetime,
    fresh_hours: float,
    description: str,
) -> str:
    """One analyte over the evidence window, as an inline SVG element."""
    fresh_from = as_of - timedelta(hours=fresh_hours)
    first = min([p.at for p in points] + [fresh_from])
    span = max(as_of - first, timedelta(hours=12))
    left, right = _day_number(as_of - span * 1.08), _day_number(as_of + span * 0.06)
    now, old_until = _day_number(as_of), _day_number(fresh_from)
    values = [p.value for p in points] + [t.value for t in thresholds]
    positive = [v for v in values if v > 0]
    log = len(positive) == len(values) and bool(values) and max(values) / min(values) > 30
    legend_rows = len(thresholds) + 1
    width, plot_in, top_in, axis_in = 4.0, 1.75, 0.3, 0.55
    legend_in = 0.19 * legend_rows + 0.08
    height = top_in + plot_in + axis_in + legend_in
    with _drawing() as figure:
        figure.set_size_inches(width, height)
        bottom = (axis_in + legend_in) / height
        ax = figure.add_axes((0.85 / width, bottom, 2.95 / width, plot_in / height))
        figure.text(0.02, 1 - 0.16 / height, title, fontweight="bold", fontsize=9, va="center")
        ax.set_ylabel(f"{unit}{' (log scale)' if log else ''}")
        if log:
            ax.set_yscale("log")
            # Plain numbers: matplotlib's log labels are mathtext, which is off (text.parse_math).
            ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: number(y)))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(left, right)
        _date_axis(ax)
        ax.set_xlabel("time (UTC)")
        for spine in ("top", "right"):
            ax.spines[spine].set_visible(False)
        # Grey, not hatched: a hatch would cross the points; grey reads the same without colour.
        ax.axvspan(left, old_until, facecolor=_OLD_ZONE, edgecolor="none")
        ax.axvline(now, color=_MUTED, linewidth=1)
        ax.annotate(
            "assessment",
            xy=(now, 1.0),
            xycoords=("data", "axes fraction"),
            ha="right",
            va="bottom",
            fontsize=7,
            color=_MUTED,
            xytext=(-2, 1),
            textcoords="offset points",
        )
        handles: list[Artist] = []
        for style, threshold in zip(_cycle(_THRESHOLD_STYLES), thresholds, strict=False):
            ax.axhline(threshold.value, color=_INK, linestyle=style, linewidth=1.1)
            label = _wrapped(threshold.label, 60, lines=1)
            handles.append(Line2D([], [], color=_INK, linestyle=style, label=label))
        ordered = sorted(points, key=lambda p: p.at)
        times = [_day_number(p.at) for p in ordered]
        ax.plot(times, [p.value for p in ordered], color=_INK, linewidth=1)
        for at, point in zip(times, ordered, strict=True):
            marker = _BOUND_MARKER.get(point.bound or "", "o")
            face = "white" if point.preliminary or point.bound else _INK
            ax.plot(
                [at],
                [point.value],
                linestyle="none",
                marker=marker,
                markersize=6,
                markerfacecolor=face,
                markeredgecolor=_INK,
            )
        if ordered:
            latest = ordered[-1]
            ax.annotate(
                _latest_text(latest),
                xy=(times[-1], latest.value),
                xytext=(-4, 6),
                textcoords="offset points",
                ha="right",
                fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.85},
            )
        _pad_y(ax, values, log)
        handles.append(Patch(facecolor=_OLD_ZONE, edgecolor="0.6", label="too old to count"))
        figure.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0.0, 0.0),
            ncol=1,
            frameon=False,
            fontsize=7.5,
            labelspacing=0.3,
            handlelength=2.2,
            columnspacing=1.0,
        )
        return _svg(figure, description)


def _day_number(moment: datetime) -> float:
    """matplotlib's time axis unit (days since its epoch)."""
    return float(date2num(moment))  # type: ignore[no-untyped-call]


def _date_axis(ax: Axes) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=6)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


@contextmanager
def _drawing() -> Iterator[Figure]:
    with _LOCK, mpl.rc_context(_STYLE):
        figure = Figure()
        FigureCanvasSVG(figure)
        yield figure


def _svg(figure: Figure, description: str) -> str:
    buffer = io.StringIO()
    metadata = {"Creator": None, "Date": None, "Format": None, "Type": None}
    figure.savefig(buffer, format="svg", metadata=metadata)
    text = buffer.getvalue()
    start = _SVG_START.search(text)
    assert start is not None
    # Inline in HTML: no XML prolog or DOCTYPE; announced as one image with a text equivalent.
    label = (
        description.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )
    return f'<svg role="img" aria-label="{label}"' + text[start.end() :]


def _ratio_ticks(low: float, high: float) -> list[float]:
    """1-3-10 ticks; decades only when the range is wide (labels would collide)."""
    exponents = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    mantissas = (1, 3) if math.log10(high / low) <= 3.5 else (1,)
    ticks = [m * 10.0**e for e in exponents for m in mantissas]
    return [t for t in ticks if low <= t <= high]


def _wrapped(text: str, width: int, lines: int = 2) -> str:
    """At most `lines` lines of `width` characters; the rest cut with an ellipsis."""
    return "\n".join(textwrap.wrap(text, width, max_lines=lines, placeholder="…"))


def _absent(state: str) -> str:
    return {
        "missing": "no result",
        "no-criterion": "no threshold for this unit",
    }.get(state, "not placed")


def _cycle(items: Sequence[LineStyle]) -> Iterator[LineStyle]:
    while True:
        yield from items


def _latest_text(point: SeriesPoint) -> str:
    return f"{point.bound or ''}{number(point.value)}"


def _pad_y(ax: Axes, values: list[float], log: bool) -> None:
    if not values:
        return
    low, high = min(values), max(values)
    if log:
        ax.set_ylim(low / 2, high * 2)
    else:
        # At least 5 % of the values' size: close values (38.5 and 38.6 °C) need no 3-decimal ticks.
        margin = max((high - low) * 0.15, abs(high) * 0.05) or 1.0
        bottom = low - margin
        ax.set_ylim(max(0.0, bottom) if low >= 0 else bottom, high + margin)
