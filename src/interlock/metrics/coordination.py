"""Coordination metrics: the numbers that show a release is run by hand and by few.

Approval wait, share of manual steps, how concentrated releases are on one
person, schedule slip; and the ranking of manual steps worth automating first.
None of these has DORA bands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from interlock.metrics.definitions import STATISTIC_WORDS, Definitions
from interlock.metrics.events import StepEvent
from interlock.metrics.facts import DeliveryFacts
from interlock.metrics.results import Kind, MetricResult, not_enough
from interlock.metrics.stats import SortedSample, statistic_of

NO_BANDS = "no bands: compare with your own earlier figures"


def _note(n: int, definitions: Definitions) -> str:
    return not_enough(n) if n < definitions.min_events else NO_BANDS


def approval_wait(facts: DeliveryFacts, definitions: Definitions) -> list[MetricResult]:
    """Time from an approval being asked for to the decision: p50 and p90."""
    durations = facts.approval_waits()
    n = len(durations.sample)
    suffix = ""
    if durations.open:
        suffix += f"; {durations.open} still waiting, not counted"
    if durations.skewed:
        suffix += f"; {durations.skewed} decided before asked (clock skew) count as 0"
    results = []
    for label, q in (("p50", 0.5), ("p90", 0.9)):
        results.append(
            MetricResult(
                key=f"approval_wait_{label}",
                title=f"Approval wait ({label})",
                value=durations.sample.quantile(q) if n else None,
                kind=Kind.DURATION,
                n=n,
                definition=(
                    f"{label} of the time from an approval being asked for to its decision" + suffix
                ),
                band_note=_note(n, definitions),
                details={"decided": n, "waiting": durations.open},
            )
        )
    return results


def manual_step_share(facts: DeliveryFacts, definitions: Definitions) -> MetricResult:
    """Share of step runs that a person had to sign off."""
    counts = facts.step_counts()
    n = counts.manual + counts.automated
    return MetricResult(
        key="manual_step_share",
        title="Share of manual steps",
        value=counts.manual / n if n else None,
        kind=Kind.RATIO,
        n=n,
        definition="step runs signed off by a person / all step runs of pipelines and runbooks",
        band_note=_note(n, definitions),
        details={"manual": counts.manual, "automated": counts.automated},
    )


def bus_factor(counts: Mapping[str, int]) -> int:
    """The fewest people who together ran at least half of the releases (0 for none)."""
    total = sum(counts.values())
    covered = people = 0
    for count in sorted(counts.values(), reverse=True):
        if covered * 2 >= total:
            break
        covered += count
        people += 1
    return people


def release_concentration(facts: DeliveryFacts, definitions: Definitions) -> MetricResult:
    """The top person's share of releases, how many people release, and the bus factor."""
    people = facts.releases_by_person()
    total = sum(people.counts.values())
    ranked = sorted(people.counts.items(), key=lambda item: (-item[1], item[0]))
    top_person, top_count = ranked[0] if ranked else (None, 0)
    definition = (
        "share of releases run by the person who ran the most; bus factor = the fewest"
        " people who together ran at least half of them"
    )
    if people.unknown:
        definition += f"; {people.unknown} release(s) with nobody recorded are left out"
    return MetricResult(
        key="release_concentration",
        title="Releases run by one person",
        value=top_count / total if total else None,
        kind=Kind.RATIO,
        n=total,
        definition=definition,
        band_note=_note(total, definitions),
        details={
            "top_person": top_person,
            "top_count": top_count,
            "distinct_people": len(ranked),
            "bus_factor": bus_factor(people.counts),
            "unknown": people.unknown,
            "people": [{"person": p, "releases": c} for p, c in ranked],
        },
    )


def schedule_slip(
    facts: DeliveryFacts, definitions: Definitions, *, tolerance: float = 0.0
) -> MetricResult:
    """How late planned releases ran: actual minus planned, positive when late."""
    slips = facts.schedule_slips().sample
    n = len(slips)
    late = slips.count_over(tolerance) if n else 0
    stat = STATISTIC_WORDS[definitions.statistic]
    definition = (
        f"{stat} of actual minus planned time over releases that had a plan (positive ="
        " late, negative = early)"
    )
    if tolerance:
        definition += f"; late means more than {tolerance:g}s after the plan"
    return MetricResult(
        key="schedule_slip",
        title="Schedule slip",
        value=statistic_of(slips, definitions.statistic),
        kind=Kind.DURATION,
        n=n,
        definition=definition,
        band_note=_note(n, definitions),
        details={"planned": n, "late": late, "late_share": late / n if n else None},
    )


def coordination_metrics(facts: DeliveryFacts, definitions: Definitions) -> list[MetricResult]:
    """Approval wait (p50, p90), manual step share, concentration and schedule slip."""
    return [
        *approval_wait(facts, definitions),
        manual_step_share(facts, definitions),
        release_concentration(facts, definitions),
        schedule_slip(facts, definitions),
    ]


@dataclass(frozen=True)
class ManualStepRank:
    """A manual step and what it costs people: the candidates to automate next."""

    name: str
    runs: int
    signed_off: int  # runs with a recorded sign-off time
    median_signoff: float | None  # seconds from the step starting to its sign-off
    total_signoff: float  # seconds, summed over runs: how often x how long


def rank_manual_steps(steps: Iterable[StepEvent]) -> list[ManualStepRank]:
    """Manual steps, most costly first: by total sign-off time, then by runs, then name."""
    waits: dict[str, list[float]] = defaultdict(list)
    runs: dict[str, int] = defaultdict(int)
    for step in steps:
        if not step.manual:
            continue
        runs[step.name] += 1
        if step.finished_at is not None:
            waits[step.name].append(max(0.0, (step.finished_at - step.started_at).total_seconds()))
    ranks = []
    for name, count in runs.items():
        sample = SortedSample(waits[name])
        ranks.append(
            ManualStepRank(
                name=name,
                runs=count,
                signed_off=len(sample),
                median_signoff=sample.quantile(0.5) if len(sample) else None,
                total_signoff=sum(waits[name]),
            )
        )
    ranks.sort(key=lambda r: (-r.total_signoff, -r.runs, r.name))
    return ranks
