"""The report's charts: releases per week or month, release days by weekday, per person."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta, tzinfo

from interlock.metrics.assess import signs as sign_rules
from interlock.metrics.assess.model import Chart
from interlock.metrics.assess.releases import Release, heads
from interlock.metrics.events import Outcome
from interlock.metrics.facts import zone_name
from interlock.metrics.results import MetricResult


def release_charts(
    releases: list[Release], zone: tzinfo, concentration: MetricResult
) -> list[Chart]:
    """Releases per week (a row once), release days by weekday, releases per person."""
    live = heads([r for r in releases if r.outcome is not Outcome.CANCELLED])
    days = [r.when.day(zone) for r in live]  # a release (a row) once, whatever it listed
    charts: list[Chart] = []
    if days:
        first, last = min(days), max(days)
        weekly = (last - first).days <= 7 * 104
        if weekly:
            start = first - timedelta(days=first.weekday())
            buckets = Counter(d - timedelta(days=d.weekday()) for d in days)
            labels, values = [], []
            while start <= last:
                labels.append(start.isoformat())
                values.append(float(buckets.get(start, 0)))
                start += timedelta(days=7)
            title, note = "Releases per week", "weeks start on Monday"
        else:
            months = Counter(d.strftime("%Y-%m") for d in days)
            labels = sorted(months)
            values = [float(months[m]) for m in labels]
            title, note = "Releases per month", ""
        charts.append(Chart("per_week" if weekly else "per_month", title, labels, values, note))
        weekdays = Counter(d.weekday() for d in set(days))
        charts.append(
            Chart(
                "weekday",
                "Release days by weekday",
                list(sign_rules.WEEKDAYS),
                [float(weekdays.get(i, 0)) for i in range(7)],
                f"days with at least one release, in {zone_name(zone)}",
            )
        )
    people = concentration.details.get("people") or []
    if people:
        top = people[:10]
        charts.append(
            Chart(
                "people",
                "Releases by the person who ran them",
                [p["person"] for p in top],
                [float(p["releases"]) for p in top],
                "the ten who ran the most" if len(people) > 10 else "",
            )
        )
    return charts
