"""The warning signs of manual coordination, each as evidence with its numbers.

Every sign states the rule that shows it (``threshold``) and the figures the
rule was applied to, so a reader can disagree with the rule and still use the
figures. A sign the inputs cannot speak to says what is missing.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, tzinfo

from interlock.metrics.assess.model import Sign
from interlock.metrics.assess.releases import Hotfix, Release, heads, slip_times
from interlock.metrics.assess.words import human_duration as format_duration
from interlock.metrics.events import Outcome
from interlock.metrics.results import MetricResult, not_enough
from interlock.metrics.stats import SortedSample, coefficient_of_variation

ONE_PERSON_SHARE = 0.5
TOGETHER_SHARE = 0.8
TOGETHER_MIN_DAYS = 3
TOP_WEEKDAY_SHARE = 0.5
TOP_TWO_WEEKDAYS_SHARE = 0.8
TAG_GAP = 86400.0
LATE_SHARE = 0.2
HOTFIX_SHARE = 0.1
IRREGULAR = 1.0
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class SignInputs:
    releases: list[Release]
    hotfixes: list[Hotfix]
    zone: tzinfo
    min_events: int
    from_sheet: bool
    has_git: bool
    columns: frozenset[str] = field(default_factory=frozenset)  # fields the sheet has

    def live(self) -> list[Release]:
        """Releases that happened: cancelled ones left out."""
        return [r for r in self.releases if r.outcome is not Outcome.CANCELLED]

    def rows(self) -> list[Release]:
        """One deployment per release that happened: a train of three services counts once."""
        return heads(self.live())

    def days(self) -> list[date]:
        """Distinct calendar days with a release, in order."""
        return sorted({r.when.day(self.zone) for r in self.live()})


def pct(part: int, whole: int) -> str:
    """``"3 of 4 (75%)"``."""
    return f"{part} of {whole} ({part / whole:.0%})" if whole else f"{part} of 0"


def _rows(releases: Iterable[Release], limit: int = 10) -> str:
    ids = [r.release_id.removeprefix("row ") for r in releases]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def one_person(inputs: SignInputs, concentration: MetricResult) -> Sign:
    """One person runs most releases."""
    key, title = "one_person", "One person runs most releases"
    rule = f"shown when one person ran at least {ONE_PERSON_SHARE:.0%} of the releases"
    if not inputs.from_sheet or "run_by" not in inputs.columns:
        why = "the release spreadsheet has no column saying who ran each release"
        return Sign(key, title, None, why if inputs.from_sheet else "needs --releases", rule)
    d = concentration.details
    n = concentration.n
    if n < inputs.min_events:
        return Sign(key, title, None, not_enough(n), rule, {"releases": n})
    share = concentration.value or 0.0
    evidence = (
        f"{d['top_person']} ran {pct(d['top_count'], n)} releases; {d['distinct_people']}"
        f" people ran releases; bus factor {d['bus_factor']} (the fewest people who together"
        " ran half of them)"
    )
    if d["unknown"]:
        evidence += f"; {d['unknown']} release(s) name nobody"
    numbers = {k: d[k] for k in ("top_person", "top_count", "distinct_people", "bus_factor")}
    return Sign(key, title, share >= ONE_PERSON_SHARE, evidence, rule, {"releases": n, **numbers})


def together(inputs: SignInputs) -> Sign:
    """Many services always released together (a release train run by hand)."""
    key, title = "together", "Services always released together"
    rule = (
        f"shown when two services went out on the same day on at least {TOGETHER_SHARE:.0%}"
        f" of the days either went out, at least {TOGETHER_MIN_DAYS} times"
    )
    days: dict[str, set[date]] = defaultdict(set)
    for release in inputs.live():
        days[release.service].add(release.when.day(inputs.zone))
    if len(days) < 2:
        return Sign(key, title, None, "only one service in the data", rule)
    pairs = []
    for a, b in itertools.combinations(sorted(days), 2):
        both, either = len(days[a] & days[b]), len(days[a] | days[b])
        pairs.append((both / either, both, either, a, b))
    pairs.sort(key=lambda p: (-p[0], -p[1], p[3], p[4]))
    close = [p for p in pairs if p[0] >= TOGETHER_SHARE and p[1] >= TOGETHER_MIN_DAYS]
    groups = _groups([(a, b) for *_, a, b in close])
    per_day = _services_per_day(inputs)
    crowded = sum(1 for services in per_day.values() if len(services) >= 2)
    found: list[dict[str, object]] = []
    rows = inputs.rows()
    per_release = len(inputs.live()) / len(rows) if rows else 0.0
    numbers = {
        "groups": found,
        "days_with_two_or_more_services": crowded,
        "release_days": len(per_day),
        "services_per_release": per_release,  # a release (a row) once
    }
    parts = []
    for group in groups:
        every = set.intersection(*(days[s] for s in group))
        anyone = set.union(*(days[s] for s in group))
        found.append({"services": group, "days_all": len(every), "days_any": len(anyone)})
        parts.append(
            f"{', '.join(group)} were all released on the same day on"
            f" {pct(len(every), len(anyone))} days any of them was released"
        )
    if not parts:
        _, both, either, a, b = pairs[0]
        parts.append(f"closest pair: {a} and {b}, together on {pct(both, either)} of their days")
    parts.append(f"{pct(crowded, len(per_day))} release days saw two or more services go out")
    parts.append(f"{per_release:.1f} services per release on average ({len(rows)} releases)")
    return Sign(key, title, bool(groups), "; ".join(parts), rule, numbers)


def _services_per_day(inputs: SignInputs) -> dict[date, set[str]]:
    per_day: dict[date, set[str]] = defaultdict(set)
    for release in inputs.live():
        per_day[release.when.day(inputs.zone)].add(release.service)
    return per_day


def _groups(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Connected services: a-b and b-c make one group a, b, c."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    members: dict[str, list[str]] = defaultdict(list)
    for name in sorted(parent):
        members[root(name)].append(name)
    return sorted(members.values(), key=lambda g: (-len(g), g))


def weekly_slot(inputs: SignInputs) -> Sign:
    """Releases bunched into fixed weekly slots (the release call)."""
    key, title = "weekly_slot", "Releases bunched into fixed weekly slots"
    rule = (
        f"shown when one weekday holds at least {TOP_WEEKDAY_SHARE:.0%} of the release days, or"
        f" two weekdays at least {TOP_TWO_WEEKDAYS_SHARE:.0%}"
    )
    days = inputs.days()
    n = len(days)
    if n < inputs.min_events:
        return Sign(key, title, None, not_enough(n) + " release days", rule, {"release_days": n})
    weekdays = Counter(day.weekday() for day in days)
    ranked = sorted(weekdays.items(), key=lambda item: (-item[1], item[0]))
    top, top_count = ranked[0]
    two = top_count + (ranked[1][1] if len(ranked) > 1 else 0)
    evidence = f"{pct(top_count, n)} release days fell on a {WEEKDAYS[top]}"
    if len(ranked) > 1:
        evidence += f"; {WEEKDAYS[top]} and {WEEKDAYS[ranked[1][0]]} together: {pct(two, n)}"
    timed = [r.when.at.astimezone(inputs.zone) for r in inputs.rows() if r.when.has_time]
    numbers: dict[str, object] = {
        "release_days": n,
        "by_weekday": {WEEKDAYS[d]: c for d, c in sorted(weekdays.items())},
    }
    if len(timed) >= inputs.min_events:
        slots = Counter((at.weekday(), at.hour) for at in timed)
        (day, hour), count = sorted(slots.items(), key=lambda i: (-i[1], i[0]))[0]
        evidence += (
            f"; {pct(count, len(timed))} releases with a time of day started on a"
            f" {WEEKDAYS[day]} between {hour:02d}:00 and {hour + 1:02d}:00"
        )
        numbers["top_slot"] = {"weekday": WEEKDAYS[day], "hour": hour, "releases": count}
    observed = top_count / n >= TOP_WEEKDAY_SHARE or two / n >= TOP_TWO_WEEKDAYS_SHARE
    return Sign(key, title, observed, evidence, rule, numbers)


def tag_gap(inputs: SignInputs) -> Sign:
    """Long gap from tag to production: a built release waits for people."""
    key, title = "tag_gap", "Long gap from tag to production"
    rule = (
        f"shown when the median time from tag to production is {format_duration(TAG_GAP)} or more"
    )
    if not inputs.has_git or not inputs.from_sheet:
        why = "needs both --git and --releases: git says when a tag was made, the sheet when it"
        return Sign(key, title, None, why + " reached production", rule)
    matched = [r for r in inputs.live() if r.tagged is not None]
    if not matched:
        why = "no release row matched a tag; compare the version column with the tag names"
        return Sign(key, title, None, why, rule, {"matched": 0})
    gaps = [
        (r.when.in_production_by() - r.tagged.tag.tagged_at).total_seconds()
        for r in matched
        if r.tagged
    ]
    early = sum(1 for g in gaps if g < 0)
    n = len(gaps)
    if n < inputs.min_events:
        return Sign(key, title, None, not_enough(n) + " tagged releases", rule, {"matched": n})
    sample = SortedSample(gaps)
    median = sample.quantile(0.5)
    evidence = (
        f"median {format_duration(max(median, 0))} from tag to production over {n} deployments"
        f" (longest {format_duration(max(sample.quantile(1.0), 0))})"
    )
    if early:
        evidence += f"; {early} were in production before their tag was made"
    if any(not r.when.has_time for r in matched):
        evidence += "; a release date without a time counts to the end of that day"
    numbers = {"matched": n, "median_seconds": median, "before_tag": early}
    return Sign(key, title, median >= TAG_GAP, evidence, rule, numbers)


def no_approver(inputs: SignInputs) -> Sign:
    """Releases without a recorded approver."""
    key, title = "no_approver", "Releases without a recorded approver"
    rule = "shown when any release has no approver recorded"
    live = inputs.rows()
    if not inputs.from_sheet:
        return Sign(key, title, None, "needs --releases: git does not record approvals", rule)
    if "approver" not in inputs.columns:
        evidence = (
            f"the spreadsheet has no approver column: none of the {len(live)} releases"
            " records who approved it"
        )
        return Sign(key, title, True, evidence, rule, {"releases": len(live), "missing": len(live)})
    missing = [r for r in live if not r.approver]
    own = [r for r in live if r.approver and r.run_by and r.approver.lower() == r.run_by.lower()]
    evidence = f"{pct(len(missing), len(live))} releases have no approver recorded"
    if missing:
        evidence += f" (rows {_rows(missing)})"
    if own:
        evidence += (
            f"; {len(own)} more were approved by the person who ran them (rows {_rows(own)})"
        )
    numbers = {"releases": len(live), "missing": len(missing), "self_approved": len(own)}
    return Sign(key, title, bool(missing), evidence, rule, numbers)


def slips(inputs: SignInputs) -> Sign:
    """Planned releases that went out later than planned."""
    key, title = "slips", "Planned releases slip"
    rule = f"shown when at least {LATE_SHARE:.0%} of planned releases went out late"
    if not inputs.from_sheet:
        return Sign(key, title, None, "needs --releases: git does not record plans", rule)
    if "planned_date" not in inputs.columns:
        return Sign(key, title, None, "the release spreadsheet has no planned date column", rule)
    pairs = [t for r in inputs.rows() if (t := slip_times(r, inputs.zone))]
    slip = [(actual - planned).total_seconds() for actual, planned in pairs]
    n = len(slip)
    if n < inputs.min_events:
        return Sign(key, title, None, not_enough(n) + " planned releases", rule, {"planned": n})
    late = SortedSample(s for s in slip if s > 0)
    early = sum(1 for s in slip if s < 0)
    evidence = f"{pct(len(late), n)} planned releases went out later than planned"
    if len(late):
        evidence += (
            f", by a median of {format_duration(late.quantile(0.5))}"
            f" (longest {format_duration(late.quantile(1.0))})"
        )
    evidence += f"; {early} went out early"
    numbers = {"planned": n, "late": len(late), "early": early}
    return Sign(key, title, len(late) / n >= LATE_SHARE, evidence, rule, numbers)


def hotfixes(inputs: SignInputs, window: float) -> Sign:
    """Patch releases soon after a release: hotfixes, counted as failures."""
    key, title = "hotfixes", "Patch releases soon after a release"
    rule = (
        f"shown when at least {HOTFIX_SHARE:.0%} of releases are hotfixes: a patch version"
        f" within {format_duration(window)} of the release it patches (same service or tag"
        " series), or notes, labels or version saying hotfix; a release (a row) counts once"
    )
    n = len(inputs.rows())  # a release (a row) once, however many services it lists
    if n < inputs.min_events:
        return Sign(key, title, None, not_enough(n) + " releases", rule, {"releases": n})
    fixes = inputs.hotfixes
    evidence = f"{pct(len(fixes), n)} releases were hotfixes"
    if fixes:
        shown = "; ".join(h.reason for h in fixes[:5])
        evidence += f" ({shown}{'; ...' if len(fixes) > 5 else ''})"
        evidence += "; each release a hotfix repaired counts as a change failure"
    numbers = {"releases": n, "hotfixes": len(fixes)}
    return Sign(key, title, len(fixes) / n >= HOTFIX_SHARE, evidence, rule, numbers)


def irregular(inputs: SignInputs) -> Sign:
    """Irregular cadence: bursts and long silences between release days."""
    key, title = "irregular", "Irregular cadence"
    rule = (
        f"shown when the gaps between release days vary by {IRREGULAR:g} or more (coefficient"
        " of variation: 0 like clockwork, 1 as irregular as chance)"
    )
    days = inputs.days()
    gaps = [float((b - a).days) for a, b in zip(days, days[1:], strict=False)]
    if len(gaps) < inputs.min_events:
        return Sign(key, title, None, not_enough(len(gaps)) + " gaps", rule, {"gaps": len(gaps)})
    variation = coefficient_of_variation(gaps) or 0.0
    sample = SortedSample(gaps)
    evidence = (
        f"between release days: median gap {sample.quantile(0.5):g} days, longest"
        f" {sample.quantile(1.0):g} days, variation {variation:.2f}"
    )
    numbers = {"gaps": len(gaps), "median_days": sample.quantile(0.5), "variation": variation}
    return Sign(key, title, variation >= IRREGULAR, evidence, rule, numbers)
