"""Server-rendered SVG charts for the dashboard: numbers in, escaped SVG markup out.

Pure (no Flask, no database). Colours come from the stylesheet's classes (``bar``, ``bar-error``,
``axis``…), so the charts follow the page's theme; every mark has a ``<title>`` for a tooltip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup

Format = Callable[[float], str]


@dataclass(frozen=True)
class Column:
    """One time bucket of a traffic chart."""

    start: datetime
    total: int
    errors: int


def plain(value: float) -> str:
    """A number as an integer when whole, else with two decimals."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def time_columns(columns: Sequence[Column], *, width: int = 1080, height: int = 220,
                 label: str = "requests") -> Markup:
    """Stacked columns per time bucket: successful requests, errors on top, with a time axis."""
    left, bottom, top = 44, 22, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((c.total for c in columns), default=0)
    scale = _nice_ceiling(peak)
    step = plot_w / max(len(columns), 1)
    parts = [_svg_open(width, height, f"{label} over time", "chart wide"),
             _hline(left, width - 8, top, "grid"), _hline(left, width - 8, top + plot_h, "axis"),
             _text(left - 6, top + 4, plain(scale), "tick", anchor="end"),
             _text(left - 6, top + plot_h, "0", "tick", anchor="end")]
    for i, column in enumerate(columns):
        x = left + i * step + step * 0.1
        ok_h = (column.total - column.errors) / scale * plot_h if scale else 0
        err_h = column.errors / scale * plot_h if scale else 0
        when = column.start.strftime("%Y-%m-%d %H:%M")
        tip = f"{when}: {column.total} {label}, {column.errors} errors"
        parts.append(_rect(x, top + plot_h - ok_h, step * 0.8, ok_h, "bar", tip))
        if err_h:
            parts.append(_rect(x, top + plot_h - ok_h - err_h, step * 0.8, err_h, "bar-error", tip))
    ticks = _axis_ticks(len(columns))
    for i in ticks:
        x = left + i * step + step / 2
        anchor = "end" if i == ticks[-1] and len(ticks) > 1 else "middle"
        parts.append(_text(x, height - 6, _tick_label(columns, i), "tick", anchor=anchor))
    return _svg(parts)


def bars(items: Sequence[tuple[str, float]], *, fmt: Format = plain, width: int = 460,
         css: str = "bar", title: str = "bar chart") -> Markup:
    """Horizontal bars, one per ``(label, value)``, each labelled with its formatted value."""
    row, label_w, value_w = 24, 180, 90
    height = max(len(items), 1) * row + 4
    peak = max((value for _, value in items), default=0)
    plot_w = width - label_w - value_w
    parts = [_svg_open(width, height, title)]
    for i, (name, value) in enumerate(items):
        y = i * row + 2
        bar_w = value / peak * plot_w if peak else 0
        parts.append(_text(label_w - 8, y + 16, _clip(name, 26), "label", anchor="end"))
        parts.append(_rect(label_w, y + 4, max(bar_w, 1.0), row - 8, css, f"{name}: {fmt(value)}"))
        parts.append(_text(label_w + bar_w + 6, y + 16, fmt(value), "value"))
    if not items:
        parts.append(_text(width / 2, 18, "no data yet", "empty", anchor="middle"))
    return _svg(parts)


def meter(fraction: float | None, *, width: int = 220, title: str = "ratio") -> Markup:
    """A horizontal gauge filled to ``fraction`` (0..1); empty and labelled "n/a" when None."""
    height = 14
    filled = 0.0 if fraction is None else min(max(fraction, 0.0), 1.0) * width
    tip = "n/a" if fraction is None else f"{fraction * 100:.1f}%"
    return _svg([_svg_open(width, height, title), _rect(0, 0, width, height, "meter-track", tip),
                 _rect(0, 0, filled, height, "meter-fill", tip)])


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at or above ``value`` (0 stays 0)."""
    if value <= 0:
        return 0
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= value)


def _axis_ticks(count: int, ticks: int = 6) -> list[int]:
    if count <= 0:
        return []
    if count <= ticks:
        return list(range(count))
    return sorted({round(i * (count - 1) / (ticks - 1)) for i in range(ticks)})


def _tick_label(columns: Sequence[Column], i: int) -> str:
    """Hours and minutes; the date too when the columns span more than a day."""
    span = columns[-1].start - columns[0].start
    return columns[i].start.strftime("%m-%d %H:%M" if span.days >= 1 else "%H:%M")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# Markup.format escapes every argument, so labels and tooltips can never inject markup.
_CLOSE = Markup("</svg>")


def _svg(parts: list[Markup]) -> Markup:
    return Markup("").join([*parts, _CLOSE])


def _svg_open(width: float, height: float, title: str, css: str = "chart") -> Markup:
    return Markup('<svg class="{}" role="img" aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}" '
                  'xmlns="http://www.w3.org/2000/svg">').format(css, title, width, height, width, height)


def _rect(x: float, y: float, w: float, h: float, css: str, tip: str) -> Markup:
    return Markup('<rect class="{}" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" rx="2">'
                  "<title>{}</title></rect>").format(css, x, y, w, h, tip)


def _text(x: float, y: float, text: str, css: str, *, anchor: str = "start") -> Markup:
    return Markup('<text class="{}" x="{:.1f}" y="{:.1f}" text-anchor="{}">{}</text>').format(css, x, y, anchor, text)


def _hline(x1: float, x2: float, y: float, css: str) -> Markup:
    return Markup('<line class="{}" x1="{}" x2="{}" y1="{}" y2="{}"/>').format(css, x1, x2, y, y)
