"""The offline assessment: a team's release spreadsheet, git and incidents, diagnosed.

``interlock assess`` needs no server. :func:`assess` reads the inputs and
returns an :class:`Assessment`; :func:`write_html` and :func:`write_json` save it.
"""

from __future__ import annotations

from interlock.metrics.assess.analysis import AssessOptions, assess
from interlock.metrics.assess.model import Assessment, ServiceSummary, Sign, Step
from interlock.metrics.assess.report import render_html, write_html, write_json

__all__ = [
    "AssessOptions",
    "Assessment",
    "ServiceSummary",
    "Sign",
    "Step",
    "assess",
    "render_html",
    "write_html",
    "write_json",
]
