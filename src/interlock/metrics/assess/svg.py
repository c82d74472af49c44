"""Bar charts as inline SVG: no scripts, no fonts or files from anywhere else."""

from __future__ import annotations

import math
from html import escape

_CHAR = 6.6  # a generous width of one character at font-size 11, in px
_LONGEST = 24  # characters of a label shown under the axis; the tooltip keeps all of it
_SLANT = math.radians(35)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bar_chart(
    labels: list[str],
    values: list[float],
    *,
    title: str,
    width: int = 720,
    height: int = 220,
) -> str:
    """A bar chart of ``values`` with a tooltip (``<title>``) on each bar.

    The margins grow with the longest label, so slanted labels are never cut
    off at the left or bottom edge.
    """
    if not values:
        return ""
    shown = [label if len(label) <= _LONGEST else label[: _LONGEST - 1] + "…" for label in labels]
    run = max((len(label) for label in shown), default=0) * _CHAR
    right, top = 8, 10
    bottom = 20 + math.ceil(run * math.sin(_SLANT))
    step = (width - 44) / len(values)
    left = max(36, math.ceil(run * math.cos(_SLANT) - step / 2) + 4)
    height = max(height, 150 + bottom)
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(max(values), 1.0)
    step = plot_w / len(values)
    bar = max(step * 0.8, 1.0)
    every = max(1, round(len(values) / 16))  # at most ~16 labels under the axis
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="100%" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}"'
            ' stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{_num(y + 4)}" text-anchor="end"'
            f' font-size="11" fill="#555">{_num(peak * fraction)}</text>'
        )
    for i, (label, short, value) in enumerate(zip(labels, shown, values, strict=True)):
        h = plot_h * value / peak
        x = left + i * step + (step - bar) / 2
        y = top + plot_h - h
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar)}" height="{_num(h)}"'
            f' fill="#3b6ea8"><title>{escape(label)}: {_num(value)}</title></rect>'
        )
        if i % every == 0:
            lx, ly = _num(x + bar / 2), top + plot_h + 14
            parts.append(
                f'<text x="{lx}" y="{ly}" font-size="11" fill="#333" text-anchor="end"'
                f' transform="rotate(-35 {lx} {ly})">{escape(short)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
