"""The assessment as one self-contained HTML page (inline CSS and SVG, nothing fetched)."""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path

from interlock.errors import InvalidInput
from interlock.metrics.assess.model import Assessment, Sign
from interlock.metrics.assess.svg import bar_chart
from interlock.metrics.assess.words import human_value

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d1d1f;max-width:60rem;
margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
h3{font-size:1rem;margin:.2rem 0}.meta,.rule,.def{color:#555;font-size:.9rem}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
.sign{border-left:4px solid #bbb;padding:.3rem .8rem;margin:.8rem 0;background:#fafafa}
.sign.seen{border-color:#c0392b}.sign.clear{border-color:#2e8b57}
.badge{font-size:.75rem;padding:.05rem .45rem;border-radius:.6rem;background:#eee;margin-left:.4rem}
.seen .badge{background:#f6d5d1}.clear .badge{background:#d4eddf}
.warnings{background:#fff6e0;border-left:4px solid #e0a800;padding:.3rem .8rem}
figure{margin:1rem 0}figcaption{font-weight:600}
"""

_BADGE = {True: ("seen", "seen"), False: ("clear", "not seen"), None: ("unknown", "cannot tell")}


def _sign(sign: Sign) -> str:
    css, word = _BADGE[sign.observed]
    return (
        f'<div class="sign {css}" id="sign-{escape(sign.key)}"><h3>{escape(sign.title)}'
        f'<span class="badge">{word}</span></h3><p>{escape(sign.evidence)}</p>'
        f'<p class="rule">Rule: {escape(sign.threshold)}</p></div>'
    )


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(assessment: Assessment, json_file: str | None = None) -> str:
    """The whole report page; ``json_file`` (a path relative to the page) is linked."""
    a = assessment
    seen = a.observed()
    warnings = a.warnings()
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy"'
        " content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        "<title>Release coordination assessment</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Release coordination assessment</h1>",
        f'<p class="meta">Generated {escape(a.generated_at.isoformat(timespec="seconds"))}'
        f" &middot; period {escape(a.period or 'unknown')} &middot; times in"
        f" {escape(a.zone)}</p>",
        '<section id="summary"><h2>In short</h2>',
        f"<p>The data shows {len(seen)} of {len(a.signs)} warning signs of manual release"
        " coordination"
        + (": " + escape(", ".join(s.title.lower() for s in seen)) if seen else "")
        + ". Each sign below gives its evidence and the rule applied, so you can judge it.</p>",
        *(
            [
                f'<div class="warnings" id="warnings"><p><strong>{len(warnings)} warning(s)'
                " about the inputs</strong> (the rest of the data was still used):</p><ul>",
                *(f"<li>{escape(w)}</li>" for w in warnings),
                "</ul></div>",
            ]
            if warnings
            else []
        ),
        "</section>",
        '<section id="signs"><h2>Warning signs of manual coordination</h2>',
        *(_sign(s) for s in a.signs),
        "</section>",
        '<section id="metrics"><h2>Delivery metrics</h2>',
        _table(
            ["Metric", "Value", "Band", "n", "Definition"],
            [
                [
                    escape(m.title),
                    f"<strong>{escape(human_value(m))}</strong>",
                    escape(m.band_note),
                    str(m.n),
                    f'<span class="def">{escape(m.definition)}</span>',
                ]
                for m in a.metrics
            ],
        ),
    ]
    if a.not_measured:
        parts.append("<p>Not measured from these inputs:</p><ul>")
        parts += [f"<li>{escape(x['title'])}: {escape(x['why'])}</li>" for x in a.not_measured]
        parts.append("</ul>")
    parts.append("</section>")
    charts = [c for c in a.charts if c.values]
    if charts:
        parts.append('<section id="charts"><h2>Charts</h2>')
        for chart in charts:
            parts.append(
                f'<figure id="chart-{escape(chart.key)}"><figcaption>{escape(chart.title)}'
                f"</figcaption>{bar_chart(chart.labels, chart.values, title=chart.title)}"
                + (f'<p class="def">{escape(chart.note)}</p>' if chart.note else "")
                + "</figure>"
            )
        parts.append("</section>")
    if a.services:
        parts.append('<section id="services"><h2>Services</h2>')
        parts.append(
            _table(
                [
                    "Service",
                    "Releases",
                    "First",
                    "Last",
                    "Change failures",
                    "Hotfixes",
                    "Days released alone",
                    "Usually released with",
                ],
                [
                    [
                        escape(s.service),
                        str(s.releases),
                        s.first,
                        s.last,
                        str(s.change_failures),
                        str(s.hotfixes),
                        str(s.released_alone),
                        escape(", ".join(s.often_with) or "-"),
                    ]
                    for s in a.services
                ],
            )
        )
        parts.append("</section>")
    parts.append('<section id="steps"><h2>Steps to take first</h2><ol>')
    parts += [f"<li><strong>{escape(s.title)}</strong>: {escape(s.why)}</li>" for s in a.steps]
    parts.append("</ol></section>")
    if a.links:
        parts.append(
            '<section id="links"><h2>Incidents linked to deployments</h2>'
            "<p>Each link charges the deployment with a change failure.</p><ul>"
        )
        parts += [f"<li>{escape(link)}</li>" for link in a.links]
        parts.append("</ul></section>")
    parts.append('<section id="definitions"><h2>Definitions, settings and assumptions</h2><ul>')
    parts += [f"<li>{escape(x)}</li>" for x in a.assumptions]
    parts.append("</ul><table><tbody>")
    parts += [
        f"<tr><th>{escape(k.replace('_', ' '))}</th><td>{escape(v)}</td></tr>"
        for k, v in a.definitions.items()
    ]
    parts.append("</tbody></table>")
    inputs = [f"{k.replace('_', ' ')}: {v}" for k, v in a.inputs.items() if v not in (None, {})]
    parts.append(f'<p class="def">Inputs: {escape("; ".join(inputs))}.</p>')
    if json_file:
        href = escape(json_file, quote=True)
        parts.append(f'<p>All figures as data: <a href="{href}">{escape(json_file)}</a></p>')
    parts.append("</section></body></html>\n")
    return "\n".join(parts)


def write_html(assessment: Assessment, path: Path, json_file: Path | None = None) -> None:
    """Write the report page to ``path``, linking ``json_file`` when one is written."""
    link = None
    if json_file is not None:
        link = os.path.relpath(json_file.resolve(), path.resolve().parent).replace(os.sep, "/")
    _write(path, render_html(assessment, link))


def write_json(assessment: Assessment, path: Path) -> None:
    """Write the assessment as JSON to ``path``."""
    _write(path, json.dumps(assessment.as_dict(), indent=2, default=str) + "\n")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None
