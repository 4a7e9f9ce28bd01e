from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from app.web.charts import Column, bars, meter, plain, time_columns

START = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)


def heights(svg: str, css: str) -> list[float]:
    return [float(h) for h in re.findall(rf'<rect class="{css}" x="[\d.]+" y="[\d.]+" width="[\d.]+" '
                                         r'height="([\d.]+)"', svg)]


def test_columns_stack_errors_on_successes_scaled_to_a_round_maximum() -> None:
    columns = [Column(START + timedelta(minutes=i), total, errors)
               for i, (total, errors) in enumerate([(4, 1), (0, 0), (7, 0)])]
    svg = str(time_columns(columns, width=720, height=200))
    plot = 200 - 22 - 10
    assert heights(svg, "bar") == [round(3 / 10 * plot, 1), 0.0, round(7 / 10 * plot, 1)]
    assert heights(svg, "bar-error") == [round(1 / 10 * plot, 1)]
    assert ">10</text>" in svg  # the axis top: 7 rounded up to 1, 2, 5 x 10^n
    assert "<title>2026-01-02 03:00: 4 requests, 1 errors</title>" in svg
    assert re.findall(r">\d\d:\d\d<", svg) == [">03:00<", ">03:01<", ">03:02<"]


def test_bars_escape_labels_and_scale_to_the_largest() -> None:
    svg = str(bars([("<script>", 2.0), ("b", 4.0)], width=400))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    widths = [float(w) for w in re.findall(r'<rect class="bar" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', svg)]
    assert widths == [65.0, 130.0]  # plot width 400 - 180 - 90


def test_empty_bars_say_so() -> None:
    assert "no data yet" in str(bars([]))


def test_meter_fills_its_fraction_and_says_na_without_one() -> None:
    assert 'class="meter-fill" x="0.0" y="0.0" width="55.0"' in str(meter(0.25, width=220))
    assert "<title>n/a</title>" in str(meter(None))


def test_plain_numbers() -> None:
    assert plain(1234.0) == "1,234"
    assert plain(2.5) == "2.50"
