"""The options ``interlock metrics`` and ``interlock assess`` share: how the keys are measured."""

from __future__ import annotations

import click

STATISTIC_OPTION = click.option(
    "--statistic",
    type=click.Choice(["median", "mean", "p90"]),
    default="median",
    show_default=True,
    help="How lead time, time to restore and schedule slip become one number.",
)
FREQUENCY_UNIT_OPTION = click.option(
    "--frequency-unit",
    type=click.Choice(["day", "week", "month"]),
    default="week",
    show_default=True,
    help="Frequencies per day, week or month (30 days).",
)
BANDS_OPTION = click.option(
    "--bands",
    type=click.Choice(["2021", "2023", "2024", "none"]),
    default="2024",
    show_default=True,
    help="Which DORA report's performance bands classify the four keys.",
)
MIN_EVENTS_OPTION = click.option(
    "--min-events",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Fewer events than this give 'not enough data' instead of a band "
    "(or, in `assess`, a warning sign).",
)
