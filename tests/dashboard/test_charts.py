"""Drawing charts: round scales, short numbers, escaped labels, one shape per bar."""

import re

import pytest

from jeg_contacts.dashboard.charts import (
    Bar,
    column_chart,
    compact,
    horizontal_bar_chart,
    nice_step,
    scale,
)


@pytest.mark.parametrize(
    ("largest", "step"),
    [(0, 1), (3, 1), (7, 2), (10, 5), (26, 10), (572, 200), (1096, 500), (5025, 2000)],
)
def test_steps_are_round_numbers(largest: int, step: int) -> None:
    assert nice_step(largest) == step


@pytest.mark.parametrize(
    ("values", "top", "ticks"),
    [
        ([], 1, [0, 1]),
        ([0, 0], 1, [0, 1]),
        ([3, 1], 3, [0, 1, 2, 3]),
        ([28_456, 100], 30_000, [0, 10_000, 20_000, 30_000]),
        ([6341], 8000, [0, 2000, 4000, 6000, 8000]),
    ],
)
def test_scale_reaches_the_largest_value_in_whole_steps(
    values: list[int], top: int, ticks: list[int]
) -> None:
    assert scale(values) == (top, ticks)


@pytest.mark.parametrize(
    ("number", "text"),
    [(0, "0"), (999, "999"), (1000, "1k"), (1234, "1.2k"), (56_789, "57k"), (1_250_000, "1.2M")],
)
def test_compact_numbers(number: int, text: str) -> None:
    assert compact(number) == text


def test_horizontal_bars_are_proportional_and_labelled() -> None:
    svg = horizontal_bar_chart(
        "c", "Title", "Description", [Bar("Germany", 300), Bar("France", 150)], "people"
    )

    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert len(widths) == 2
    assert widths[0] == pytest.approx(2 * widths[1])
    assert re.findall(r'class="bar-value"[^>]*>([^<]*)<', svg) == ["300", "150"]
    assert "<title>Germany: 300 people</title>" in svg


def test_tiny_values_still_show_and_zero_shows_nothing() -> None:
    svg = horizontal_bar_chart(
        "c", "T", "D", [Bar("Big", 100_000), Bar("Tiny", 1), Bar("None", 0)], "people"
    )

    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[1] == 1
    assert widths[2] == 0


def test_text_is_escaped() -> None:
    svg = horizontal_bar_chart(
        "c", "<b>Title</b>", "A & B", [Bar('<script>alert("x")</script>', 1)], "people"
    )

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert '<title id="c-title">&lt;b&gt;Title&lt;/b&gt;</title>' in svg
    assert "A &amp; B" in svg


def test_columns_name_each_group_once_under_its_run() -> None:
    bars = [
        Bar("November 2025", 5, tick="Nov", group="2025"),
        Bar("December 2025", 8, tick="Dec"),
        Bar("January 2026", 2, tick="Jan", group="2026"),
        Bar("February 2026 (so far)", 1, tick="Feb", partial=True),
    ]

    svg = column_chart("m", "Per month", "Description", bars, "sign-ups")

    assert svg.count('<g class="bar">') == 4
    assert re.findall(r'class="bar-label"[^>]*>([^<]*)<', svg) == ["Nov", "Dec", "Jan", "Feb"]
    assert re.findall(r'class="bar-group"[^>]*>([^<]*)<', svg) == ["2025", "2026"]
    assert svg.count('class="group-divider"') == 1
    fills = re.findall(r'<rect [^>]*fill="(#[0-9a-f]+)"', svg)
    assert len(set(fills[:3])) == 1
    assert fills[3] != fills[0]  # the month still in progress looks different
