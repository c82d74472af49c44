"""The Prometheus histograms' bucket bounds, in seconds, by histogram.

The exposition serves them; the per-day counts (``metric_days``) count each
day's values into these same buckets, so the history of a histogram is read
from a few rows per day (changing a bound here needs a migration that counts
those rows again: :func:`~interlock.storage.metric_days.recount_metric_days`).
"""

from __future__ import annotations

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
BOUNDS: dict[str, tuple[float, ...]] = {
    "duration": (30, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
                 HOUR, 2 * HOUR, 4 * HOUR, 12 * HOUR, DAY),
    "lead_time": (10 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY,
                  7 * DAY, 14 * DAY, 30 * DAY, 90 * DAY, 180 * DAY),
    "restore": (5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, DAY,
                3 * DAY, 7 * DAY, 30 * DAY),
    "approval_wait": (MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR,
                      8 * HOUR, DAY, 3 * DAY, 7 * DAY),
}  # fmt: skip
