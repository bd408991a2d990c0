"""Small SVG charts for the report: no plotting library, a few kilobytes each.

Built with ElementTree, so every label is escaped and every chart is well-formed XML; the
page inlines them (``<svg>`` elements), so the report needs no other file. Colours and
sizes are fixed here; the text inherits the page's font.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BASE_COLOUR = "#8c959f"
TUNED_COLOUR = "#0969da"
SMOKE_COLOUR = "#bf8700"
GOOD_COLOUR = "#1a7f37"
BAD_COLOUR = "#cf222e"
GRID_COLOUR = "#d0d7de"
TEXT_COLOUR = "#24292f"
MUTED_COLOUR = "#57606a"
FONT = "11"


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    colour: str = TUNED_COLOUR


@dataclass(frozen=True)
class Bar:
    """One base-vs-tuned pair of a bar panel; intervals draw as whiskers."""

    label: str
    base: float | None
    tuned: float | None
    base_interval: tuple[float, float] | None = None
    tuned_interval: tuple[float, float] | None = None


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [low, high], about ``count`` intervals apart (steps of 1, 2,
    2.5 or 5 times a power of ten; whole numbers only when ``integer``)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    power = 10 ** math.floor(math.log10((high - low) / max(1, count)))
    steps = [m * power * scale for scale in (1, 10) for m in (1, 2, 2.5, 5)]
    if integer:
        steps = [step for step in steps if step >= 1 and step == int(step)] or [1.0]

    def intervals(step: float) -> int:
        return math.ceil(high / step - 1e-9) - math.floor(low / step + 1e-9)

    def overshoot(step: float) -> float:
        return math.ceil(high / step - 1e-9) * step - high + low - math.floor(low / step + 1e-9) * step

    step = min(steps, key=lambda s: (abs(intervals(s) - count), overshoot(s)))
    first = math.floor(low / step + 1e-9)
    return [round((first + i) * step, 10) for i in range(intervals(step) + 1)]


def _fmt(value: float) -> str:
    """A value label: thousands separated, three significant digits below ten."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.3g}"


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels with the same number of decimals, as few as tell the ticks apart exactly."""
    for decimals in range(7):
        if all(abs(round(t, decimals) - t) < 1e-9 * max(1.0, abs(t)) for t in ticks):
            return [f"{t:,.{decimals}f}" for t in ticks]
    return [_fmt(t) for t in ticks]


class _Canvas:
    def __init__(self, width: int, height: int, title: str) -> None:
        self.width, self.height = width, height
        self.root = ET.Element(
            "svg",
            {
                "xmlns": "http://www.w3.org/2000/svg",
                "viewBox": f"0 0 {width} {height}",
                "width": str(width),
                "height": str(height),
                "role": "img",
                "font-size": FONT,
                "fill": TEXT_COLOUR,
            },
        )
        ET.SubElement(self.root, "title").text = title

    def add(self, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
        element = ET.SubElement(
            self.root, tag, {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items()}
        )
        if text is not None:
            element.text = text
        return element

    def svg(self) -> str:
        return ET.tostring(self.root, encoding="unicode")


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    integer_x: bool = False,
    width: int = 640,
    height: int = 260,
) -> str:
    """Lines over a shared x axis (e.g. loss by step), with a legend when there are several."""
    drawn = [s for s in series if s.points]
    canvas = _Canvas(width, height, title)
    left, right, top, bottom = 52, 16, 16 + (16 if len(drawn) > 1 else 0), 40
    xs = [x for s in drawn for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in drawn for _, y in s.points] or [0.0, 1.0]
    x_ticks = nice_ticks(min(xs), max(xs), 6, integer=integer_x)
    y_ticks = nice_ticks(min(ys), max(ys), 4)  # a loss curve's shape, not its distance from zero
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h

    _draw_axes(canvas, x_ticks, y_ticks, px, py, (left, right, top, bottom), x_label, y_label)
    for index, s in enumerate(drawn):
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        canvas.add("polyline", points=path, fill="none", stroke=s.colour, stroke_width=2)
        if len(s.points) <= 60:
            for x, y in s.points:
                canvas.add("circle", cx=f"{px(x):.1f}", cy=f"{py(y):.1f}", r=2.5, fill=s.colour)
        if len(drawn) > 1:
            lx = left + index * 160
            canvas.add("rect", x=lx, y=4, width=12, height=4, fill=s.colour)
            canvas.add("text", s.name, x=lx + 16, y=10)
    return canvas.svg()


def bar_panels(bars: Sequence[Bar], *, title: str, panel_width: int = 150, height: int = 200) -> str:
    """One small panel per metric, each on its own scale from zero: base and tuned side by side."""
    shown = [b for b in bars if b.base is not None or b.tuned is not None]
    width = max(1, len(shown)) * panel_width
    canvas = _Canvas(width, height, title)
    top, bottom = 22, 34
    plot_h = height - top - bottom
    for index, bar in enumerate(shown):
        ox = index * panel_width
        tops = [v for v in (bar.base, bar.tuned) if v is not None]
        tops += [i[1] for i in (bar.base_interval, bar.tuned_interval) if i]
        scale = max(tops) * 1.15 if tops and max(tops) > 0 else 1.0
        canvas.add("text", bar.label, x=ox + panel_width / 2, y=14, text_anchor="middle", font_weight="600")
        baseline_y = top + plot_h
        canvas.add(
            "line", x1=ox + 16, x2=ox + panel_width - 16, y1=baseline_y, y2=baseline_y, stroke=MUTED_COLOUR
        )
        for slot, (name, value, interval, colour) in enumerate(
            (
                ("base", bar.base, bar.base_interval, BASE_COLOUR),
                ("tuned", bar.tuned, bar.tuned_interval, TUNED_COLOUR),
            )
        ):
            bx = ox + 28 + slot * ((panel_width - 56) / 2 + 4)
            bw = (panel_width - 56) / 2 - 4
            canvas.add(
                "text",
                name,
                x=f"{bx + bw / 2:.1f}",
                y=height - bottom + 16,
                text_anchor="middle",
                fill=MUTED_COLOUR,
            )
            if value is None:
                canvas.add(
                    "text",
                    "n/a",
                    x=f"{bx + bw / 2:.1f}",
                    y=baseline_y - 6,
                    text_anchor="middle",
                    fill=MUTED_COLOUR,
                )
                continue
            h = max(0.0, value) / scale * plot_h
            canvas.add(
                "rect",
                x=f"{bx:.1f}",
                y=f"{baseline_y - h:.1f}",
                width=f"{bw:.1f}",
                height=f"{h:.1f}",
                fill=colour,
                rx=2,
            )
            label_y = baseline_y - h - 5
            if interval is not None:
                lo_y = baseline_y - max(0.0, interval[0]) / scale * plot_h
                hi_y = baseline_y - max(0.0, interval[1]) / scale * plot_h
                cx = bx + bw / 2
                canvas.add(
                    "line",
                    x1=f"{cx:.1f}",
                    x2=f"{cx:.1f}",
                    y1=f"{lo_y:.1f}",
                    y2=f"{hi_y:.1f}",
                    stroke=TEXT_COLOUR,
                )
                for wy in (lo_y, hi_y):
                    canvas.add(
                        "line",
                        x1=f"{cx - 5:.1f}",
                        x2=f"{cx + 5:.1f}",
                        y1=f"{wy:.1f}",
                        y2=f"{wy:.1f}",
                        stroke=TEXT_COLOUR,
                    )
                label_y = min(label_y, hi_y - 5)
            canvas.add(
                "text", f"{value:.3f}", x=f"{bx + bw / 2:.1f}", y=f"{label_y:.1f}", text_anchor="middle"
            )
    return canvas.svg()


def share_bars(rows: Sequence[tuple[str, float, float | None]], *, title: str, width: int = 640) -> str:
    """Target against realised share (percent) per part of the mix, as paired horizontal bars."""
    row_h, label_w, top = 34, 150, 22
    height = top + row_h * max(1, len(rows)) + 8
    canvas = _Canvas(width, height, title)
    plot_w = width - label_w - 60
    for lx, colour, name in ((label_w, BASE_COLOUR, "target"), (label_w + 80, TUNED_COLOUR, "realised")):
        canvas.add("rect", x=lx, y=6, width=12, height=6, fill=colour)
        canvas.add("text", name, x=lx + 16, y=13)
    for index, (name, target, realised) in enumerate(rows):
        y = top + index * row_h
        canvas.add("text", name, x=label_w - 8, y=y + 17, text_anchor="end")
        for offset, value, colour in ((2, target, BASE_COLOUR), (15, realised, TUNED_COLOUR)):
            if value is None:
                continue
            w = max(0.0, min(100.0, value)) / 100 * plot_w
            canvas.add("rect", x=label_w, y=y + offset, width=f"{w:.1f}", height=11, fill=colour, rx=2)
            canvas.add(
                "text", f"{value:.1f}%", x=f"{label_w + w + 4:.1f}", y=y + offset + 10, fill=MUTED_COLOUR
            )
    return canvas.svg()


def timeline(rows: Sequence[tuple[str, float, float, str]], *, title: str, width: int = 640) -> str:
    """Each state as a bar from its start for its duration (seconds); failed ones in red."""
    row_h, label_w, top, bottom = 20, 130, 8, 40
    height = top + row_h * max(1, len(rows)) + bottom
    canvas = _Canvas(width, height, title)
    end = max((start + seconds for _, start, seconds, _ in rows), default=1.0) or 1.0
    ticks = nice_ticks(0.0, end, 6)
    plot_w = width - label_w - 20

    def px(seconds: float) -> float:
        return label_w + seconds / (ticks[-1] or 1) * plot_w

    axis_y = top + row_h * len(rows) + 4
    for tick, label in zip(ticks, tick_labels(ticks), strict=True):
        canvas.add("line", x1=f"{px(tick):.1f}", x2=f"{px(tick):.1f}", y1=top, y2=axis_y, stroke=GRID_COLOUR)
        canvas.add("text", label, x=f"{px(tick):.1f}", y=axis_y + 14, text_anchor="middle", fill=MUTED_COLOUR)
    canvas.add(
        "text",
        "seconds since the execution started",
        x=label_w + plot_w / 2,
        y=height - 2,
        text_anchor="middle",
        fill=MUTED_COLOUR,
    )
    for index, (name, start, seconds, status) in enumerate(rows):
        y = top + index * row_h
        colour = BAD_COLOUR if status == "failed" else (GOOD_COLOUR if status == "done" else SMOKE_COLOUR)
        canvas.add("text", name, x=label_w - 8, y=y + 14, text_anchor="end")
        canvas.add(
            "rect",
            x=f"{px(start):.1f}",
            y=y + 3,
            width=f"{max(1.5, px(start + seconds) - px(start)):.1f}",
            height=row_h - 6,
            fill=colour,
            rx=2,
        )
    return canvas.svg()


@dataclass(frozen=True)
class TradeoffPoint:
    """One arm of a sweep: its general score (x) and domain score (y)."""

    label: str
    general: float
    domain: float
    on_frontier: bool = False
    chosen: bool = False
    passes: bool = True
    undecided: bool = False  # the gate could not decide (INCONCLUSIVE): not passed, not refused


def tradeoff_chart(
    points: Sequence[TradeoffPoint],
    *,
    title: str,
    x_label: str,
    y_label: str,
    baseline: tuple[float, float] | None = None,
    lower_x_is_better: bool = False,
    width: int = 640,
    height: int = 300,
) -> str:
    """A sweep's trade-off: each arm at (general score, domain score), the base model as a grey
    square, the Pareto frontier as a line, the chosen arm ringed in green, arms the gate refused
    hollow red, arms it could not decide on hollow amber. ``lower_x_is_better``: the x axis runs
    high to low (a loss), so better is always up and right."""
    canvas = _Canvas(width, height, title)
    left, right, top, bottom = 52, 24, 16, 40
    xs = [p.general for p in points] + ([baseline[0]] if baseline else [])
    ys = [p.domain for p in points] + ([baseline[1]] if baseline else [])
    x_ticks = nice_ticks(min(xs or [0.0]), max(xs or [1.0]), 5)
    y_ticks = nice_ticks(min(ys or [0.0]), max(ys or [1.0]), 4)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        share = (x - x0) / ((x1 - x0) or 1)
        return left + (1 - share if lower_x_is_better else share) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h

    _draw_axes(canvas, x_ticks, y_ticks, px, py, (left, right, top, bottom), x_label, y_label)
    frontier = sorted((p for p in points if p.on_frontier), key=lambda p: px(p.general))
    if len(frontier) > 1:
        path = " ".join(f"{px(p.general):.1f},{py(p.domain):.1f}" for p in frontier)
        canvas.add(
            "polyline",
            points=path,
            fill="none",
            stroke=TUNED_COLOUR,
            stroke_width=1.5,
            stroke_dasharray="4 3",
        )
    if baseline is not None:
        bx, by = px(baseline[0]), py(baseline[1])
        canvas.add("rect", x=f"{bx - 4:.1f}", y=f"{by - 4:.1f}", width=8, height=8, fill=BASE_COLOUR)
        canvas.add("text", "base model", x=f"{bx + 8:.1f}", y=f"{by + 4:.1f}", fill=MUTED_COLOUR)
    for p in points:
        cx, cy = px(p.general), py(p.domain)
        colour = TUNED_COLOUR if p.passes else (SMOKE_COLOUR if p.undecided else BAD_COLOUR)
        canvas.add(
            "circle",
            cx=f"{cx:.1f}",
            cy=f"{cy:.1f}",
            r=4.5,
            fill=colour if p.passes else "white",
            stroke=colour,
            stroke_width=1.5,
        )
        if p.chosen:
            canvas.add(
                "circle",
                cx=f"{cx:.1f}",
                cy=f"{cy:.1f}",
                r=9,
                fill="none",
                stroke=GOOD_COLOUR,
                stroke_width=2.5,
            )
        note = "chosen" if p.chosen else ("" if p.passes else "undecided" if p.undecided else "refused")
        text = p.label + (f" ({note})" if note else "")
        canvas.add("text", text, x=f"{cx + 11:.1f}", y=f"{cy - 6:.1f}")
    return canvas.svg()


def _draw_axes(
    canvas: _Canvas,
    x_ticks: list[float],
    y_ticks: list[float],
    px: Callable[[float], float],
    py: Callable[[float], float],
    margins: tuple[int, int, int, int],
    x_label: str,
    y_label: str,
) -> None:
    """Grid lines and labels of the y ticks, labels of the x ticks, the x axis, both axis titles."""
    left, right, top, bottom = margins
    width, height = canvas.width, canvas.height
    plot_w, plot_h = width - left - right, height - top - bottom
    for tick, label in zip(y_ticks, tick_labels(y_ticks), strict=True):
        y = f"{py(tick):.1f}"
        canvas.add("line", x1=left, x2=width - right, y1=y, y2=y, stroke=GRID_COLOUR)
        canvas.add("text", label, x=left - 6, y=f"{py(tick) + 4:.1f}", text_anchor="end", fill=MUTED_COLOUR)
    for tick, label in zip(x_ticks, tick_labels(x_ticks), strict=True):
        x = f"{px(tick):.1f}"
        canvas.add("text", label, x=x, y=height - bottom + 16, text_anchor="middle", fill=MUTED_COLOUR)
    canvas.add("line", x1=left, x2=width - right, y1=top + plot_h, y2=top + plot_h, stroke=MUTED_COLOUR)
    canvas.add("text", x_label, x=left + plot_w / 2, y=height - 6, text_anchor="middle", fill=MUTED_COLOUR)
    middle = top + plot_h / 2
    rotate = f"rotate(-90 12 {middle:.1f})"
    canvas.add("text", y_label, x=12, y=middle, text_anchor="middle", fill=MUTED_COLOUR, transform=rotate)
