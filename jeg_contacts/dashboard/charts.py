"""Bar charts drawn on the server as inline SVG: no JavaScript, nothing fetched from elsewhere.

Each chart is an accessible image (role="img" with a title and a description); the page shows
the same numbers in a table next to it, for screen readers and for anyone who wants exact figures.
"""

from dataclasses import dataclass
from itertools import pairwise
from math import ceil, floor, log10

from babel.dates import format_date
from markupsafe import Markup, escape

from jeg_contacts.dashboard.services import Breakdown, Figures, Month

BAR_COLOUR = "#0b5ea8"
PARTIAL_COLOUR = "#8db7df"  # a figure still growing: the current month
GRID_COLOUR = "#d8dde3"
TEXT_COLOUR = "#1b1b1b"
MUTED_COLOUR = "#4a5a6a"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"

# Horizontal bars: label column, bars, then room for the value.
BAR_CHART_WIDTH = 560
ROW_HEIGHT = 26
BAR_HEIGHT = 18
LABEL_WIDTH = 215
VALUE_ROOM = 58
MAX_LABEL_CHARS = 28

# Columns (one per month): tick labels on the left, two lines of labels underneath.
COLUMN_CHART_HEIGHT = 280
COLUMN_LEFT = 52
COLUMN_TOP = 22
COLUMN_BOTTOM = 40


@dataclass(frozen=True)
class Bar:
    label: str  # the full text: tooltip and table row
    value: int
    tick: str | None = None  # shorter text on the axis ("Mar"); the label when None
    group: str | None = None  # starts a group, named on a second axis line ("2025")
    partial: bool = False  # drawn lighter: the figure is still growing


def nice_step(largest: float, ticks: int = 4) -> int:
    """A round interval (1, 2, 2.5 or 5 times a power of ten) giving about `ticks` gridlines
    up to `largest`; never below 1, as the charts count people."""
    raw = max(largest / ticks, 1)
    magnitude = 10 ** floor(log10(raw))
    candidates = (multiple * magnitude for multiple in (1, 2, 2.5, 5, 10))
    return int(next(step for step in candidates if step >= raw and step == int(step)))


def scale(values: list[int], ticks: int = 4) -> tuple[int, list[int]]:
    """The axis maximum (a whole number of steps, at least the largest value) and its ticks."""
    step = nice_step(max(values, default=0), ticks)
    top = step * max(ceil(max(values, default=0) / step), 1)
    return top, list(range(0, top + 1, step))


def compact(number: int) -> str:
    """1234 -> '1.2k', 56789 -> '57k', 1234567 -> '1.2M': short labels for narrow spaces."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if number >= size:
            scaled = number / size
            text = f"{scaled:.1f}" if scaled < 10 else f"{scaled:.0f}"
            return text.removesuffix(".0") + suffix
    return str(number)


def _n(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _svg_open(chart_id: str, title: str, description: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'font-family="{FONT}" font-size="12" fill="{TEXT_COLOUR}">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
    ]


def _short(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def horizontal_bar_chart(
    chart_id: str, title: str, description: str, bars: list[Bar], unit: str
) -> Markup:
    """One labelled bar per row, largest values as given; the value is printed at the bar's end."""
    width = BAR_CHART_WIDTH
    plot_width = width - LABEL_WIDTH - VALUE_ROOM
    plot_height = len(bars) * ROW_HEIGHT
    height = 8 + plot_height + 24
    top, ticks = scale([bar.value for bar in bars])
    parts = _svg_open(chart_id, title, description, width, height)
    for tick in ticks:
        x = LABEL_WIDTH + tick / top * plot_width
        parts.append(
            f'<g class="tick"><line x1="{_n(x)}" y1="8" x2="{_n(x)}" y2="{8 + plot_height}" '
            f'stroke="{GRID_COLOUR}"/><text x="{_n(x)}" y="{height - 6}" text-anchor="middle" '
            f'fill="{MUTED_COLOUR}" font-size="11">{compact(tick)}</text></g>'
        )
    for index, bar in enumerate(bars):
        y = 8 + index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2
        middle = y + BAR_HEIGHT / 2
        length = bar.value / top * plot_width
        if bar.value and length < 1:
            length = 1  # a handful among thousands still shows
        parts.append(
            f'<g class="bar"><title>{escape(bar.label)}: {bar.value:,} {escape(unit)}</title>'
            f'<text class="bar-label" x="{LABEL_WIDTH - 8}" y="{_n(middle)}" text-anchor="end" '
            f'dominant-baseline="central">{escape(_short(bar.tick or bar.label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{_n(y)}" width="{_n(length)}" height="{BAR_HEIGHT}" '
            f'fill="{PARTIAL_COLOUR if bar.partial else BAR_COLOUR}"/>'
            f'<text class="bar-value" x="{_n(LABEL_WIDTH + length + 6)}" y="{_n(middle)}" '
            f'dominant-baseline="central">{bar.value:,}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(chart_id: str, title: str, description: str, bars: list[Bar], unit: str) -> Markup:
    """Vertical columns left to right (a time series), values above, two label lines below."""
    width = 720
    height = COLUMN_CHART_HEIGHT
    plot_width = width - COLUMN_LEFT - 8
    plot_height = height - COLUMN_TOP - COLUMN_BOTTOM
    baseline = COLUMN_TOP + plot_height
    slot = plot_width / max(len(bars), 1)
    column_width = slot * 0.72
    top, ticks = scale([bar.value for bar in bars])
    parts = _svg_open(chart_id, title, description, width, height)
    for tick in ticks:
        y = baseline - tick / top * plot_height
        parts.append(
            f'<g class="tick"><line x1="{COLUMN_LEFT}" y1="{_n(y)}" x2="{width - 8}" '
            f'y2="{_n(y)}" stroke="{GRID_COLOUR}"/><text x="{COLUMN_LEFT - 6}" y="{_n(y)}" '
            f'text-anchor="end" dominant-baseline="central" fill="{MUTED_COLOUR}" '
            f'font-size="11">{compact(tick)}</text></g>'
        )
    for index, bar in enumerate(bars):
        centre = COLUMN_LEFT + slot * index + slot / 2
        length = bar.value / top * plot_height
        if bar.value and length < 1:
            length = 1
        parts.append(
            f'<g class="bar"><title>{escape(bar.label)}: {bar.value:,} {escape(unit)}</title>'
            f'<rect x="{_n(centre - column_width / 2)}" y="{_n(baseline - length)}" '
            f'width="{_n(column_width)}" height="{_n(length)}" '
            f'fill="{PARTIAL_COLOUR if bar.partial else BAR_COLOUR}"/>'
            f'<text class="bar-value" x="{_n(centre)}" y="{_n(baseline - length - 5)}" '
            f'text-anchor="middle" font-size="10">{compact(bar.value)}</text>'
            f'<text class="bar-label" x="{_n(centre)}" y="{baseline + 15}" '
            f'text-anchor="middle" font-size="11">{escape(bar.tick or bar.label)}</text></g>'
        )
    # Each group's name is centred under its run of columns, with a divider where a new one starts.
    starts = [*(index for index, bar in enumerate(bars) if bar.group), len(bars)]
    for start, end in pairwise(starts):
        left = COLUMN_LEFT + slot * start
        if start:
            parts.append(
                f'<line class="group-divider" x1="{_n(left)}" y1="{baseline}" x2="{_n(left)}" '
                f'y2="{height - 2}" stroke="{GRID_COLOUR}"/>'
            )
        parts.append(
            f'<text class="bar-group" x="{_n(left + slot * (end - start) / 2)}" y="{height - 4}" '
            f'text-anchor="middle" fill="{MUTED_COLOUR}" font-size="11">'
            f"{escape(bars[start].group or '')}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# The dashboard's charts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """A chart with what the page needs around it: heading, drawing, and the numbers as rows."""

    id: str
    title: str
    unit: str
    bars: list[Bar]
    svg: Markup | None  # None when there is nothing to draw yet
    note: str | None = None  # what the bars leave out, e.g. smaller countries


def dashboard_charts(figures: Figures) -> list[Chart]:
    """The dashboard's charts, in page order."""
    return [
        _signups_chart(figures.signups_by_month),
        _breakdown_chart(
            "by-type", "Active subscribers by type of organisation", figures.by_stakeholder_type
        ),
        _breakdown_chart(
            "by-country", "Active subscribers by country", figures.by_country, "countries"
        ),
        _breakdown_chart(
            "by-topic",
            "Subscriptions of active subscribers by topic",
            figures.by_topic,
            unit="subscriptions",
        ),
        _breakdown_chart("by-language", "Active subscribers by language", figures.by_language),
    ]


def _breakdown_chart(
    chart_id: str,
    title: str,
    breakdown: Breakdown,
    categories: str = "categories",
    unit: str = "active subscribers",
) -> Chart:
    bars = [Bar(row.label, row.value) for row in breakdown.rows]
    note = None
    if breakdown.other_categories:
        note = (
            f"{breakdown.other_categories} more {categories} with "
            f"{breakdown.others:,} {unit} in all are not shown."
        )
    if not breakdown.total:
        return Chart(chart_id, title, unit, bars, None, note)
    largest = breakdown.rows[0]
    description = (
        f"Bar chart, {len(bars)} bars, largest first. {largest.label} has the most {unit}: "
        f"{largest.value:,} of {breakdown.total:,}."
    )
    if note:
        description += " " + note
    return Chart(
        chart_id,
        title,
        unit,
        bars,
        horizontal_bar_chart(chart_id, title, description, bars, unit),
        note,
    )


def _signups_chart(months: list[Month]) -> Chart:
    title = "Sign-ups per month"
    unit = "sign-ups"
    bars = [
        Bar(
            label=_month_name(month) + (" (so far)" if month.partial else ""),
            value=month.value,
            tick=format_date(month.start, "MMM", locale="en"),
            group=str(month.start.year) if index == 0 or month.start.month == 1 else None,
            partial=month.partial,
        )
        for index, month in enumerate(months)
    ]
    total = sum(month.value for month in months)
    if not total:
        return Chart("signups", title, unit, bars, None)
    busiest = max(months, key=lambda month: month.value)
    description = (
        f"Column chart of sign-ups per month, {_month_name(months[0])} to "
        f"{_month_name(months[-1])}; the last column is the current month so far. "
        f"{total:,} sign-ups in all; the busiest month was {_month_name(busiest)} "
        f"with {busiest.value:,}."
    )
    return Chart(
        "signups", title, unit, bars, column_chart("signups", title, description, bars, unit)
    )


def _month_name(month: Month) -> str:
    return format_date(month.start, "MMMM y", locale="en")
