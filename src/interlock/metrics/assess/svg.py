"""Bar charts as inline SVG: no scripts, no fonts or files from anywhere else."""

from __future__ import annotations

from html import escape


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
    """A bar chart of ``values`` with a tooltip (``<title>``) on each bar."""
    if not values:
        return ""
    left, right, top, bottom = 36, 8, 10, 46
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
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
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
                f' transform="rotate(-35 {lx} {ly})">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
