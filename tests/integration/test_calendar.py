"""The release calendar: scheduled releases and freezes, listed and served as iCalendar."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from interlock.engine.calendar import release_calendar
from tests.support.api import Api

BERLIN = ZoneInfo("Europe/Berlin")

CONFIG = """\
version: 1
environments:
  - name: staging
    gates:
      before:
        - window:
            timezone: Europe/Berlin
            freeze:
              - {{from: "{freeze_from}", to: "{freeze_to}", reason: year-end freeze}}
  - name: production
    gates:
      before:
        - window:
            timezone: Europe/Berlin
            allow: [{{days: [mon, tue, wed, thu], from: "09:00", to: "16:00"}}]
            freeze:
              - {{from: "{freeze_from}", to: "{freeze_to}", reason: year-end freeze}}
              - {{from: "{far}", to: "{far}", reason: beyond the horizon}}
            freeze_calendar: ./freezes.ics
services:
  api:
    deploy: [{{name: roll-out, run: "true"}}]
  web:
    deploy: [{{name: roll-out, run: "true"}}]
permissions:
  - {{user: viewer, allow: [read], services: [web]}}
"""

FREEZES_ICS = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//freezes//EN
BEGIN:VEVENT
UID:black-friday@example.com
DTSTAMP:20240101T000000Z
DTSTART:{start}
DTEND:{end}
SUMMARY:Black Friday
END:VEVENT
END:VCALENDAR
"""


def ical(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@pytest.fixture
def setup(pilot) -> dict[str, Any]:
    today = pilot.engine.clock.now().astimezone(BERLIN).date()
    freeze_from, freeze_to = today + timedelta(days=10), today + timedelta(days=12)
    shop_start = (pilot.engine.clock.now() + timedelta(days=20)).replace(microsecond=0)
    shop_end = shop_start + timedelta(hours=36)
    (pilot.dir / "freezes.ics").write_text(
        FREEZES_ICS.format(start=ical(shop_start), end=ical(shop_end)).replace("\n", "\r\n")
    )
    far = today + timedelta(days=200)
    pilot.config(CONFIG.format(freeze_from=freeze_from, freeze_to=freeze_to, far=far))
    at = (pilot.engine.clock.now() + timedelta(days=5)).replace(microsecond=0)
    api = pilot.release("api@1.4.2", reason="PAY-9: fee rules", scheduled_at=at)
    web = pilot.release("web@2.0.0", scheduled_at=at + timedelta(days=1))
    pilot.release("web@2.0.1", scheduled_at=pilot.engine.clock.now() + timedelta(days=120))
    return {
        "pilot": pilot,
        "api": api,
        "web": web,
        "at": at,
        "freeze": (
            datetime.combine(freeze_from, time(), BERLIN),
            datetime.combine(freeze_to + timedelta(days=1), time(), BERLIN),
        ),
        "shop": (shop_start, shop_end),
    }


def test_the_calendar_lists_scheduled_releases_and_freezes(setup):
    pilot = setup["pilot"]
    found = release_calendar(pilot.engine)
    assert [(r.id, r.scheduled_at) for r in found.releases] == [
        (setup["api"].id, setup["at"]),
        (setup["web"].id, setup["at"] + timedelta(days=1)),
    ]  # web@2.0.1 is after the 90 days
    first = found.releases[0]
    assert first.reason == "PAY-9: fee rules" and first.created_by == "alice"
    assert first.route == ("staging", "production")
    assert [(i.service, i.version) for i in first.items] == [("api", "1.4.2")]
    year_end, shop = found.freezes  # the same freeze in two environments is one period
    assert (year_end.start, year_end.end) == setup["freeze"]
    assert year_end.environments == ("staging", "production")
    assert (year_end.reason, year_end.source) == ("year-end freeze", "interlock.yaml")
    assert (shop.start, shop.end) == setup["shop"]
    assert (shop.reason, shop.source, shop.environments) == (
        "Black Friday",
        "freezes.ics",
        ("production",),
    )
    assert found.problems == ()

    longer = release_calendar(pilot.engine, days=400)
    assert len(longer.releases) == 3 and len(longer.freezes) == 3
    assert [r.id for r in release_calendar(pilot.engine, readable={"web"}).releases] == [
        setup["web"].id
    ]

    (pilot.dir / "freezes.ics").unlink()  # the file is gone: say so, keep the other freezes
    broken = release_calendar(pilot.engine)
    assert [f.reason for f in broken.freezes] == ["year-end freeze"]
    assert broken.problems and "freezes.ics does not exist" in broken.problems[0]
    assert broken.problems[0].startswith("production: ")


@pytest.fixture
def api_server(setup) -> Iterator[Api]:
    pilot = setup["pilot"]
    harness = Api(pilot.engine, pilot.configs, workers=0).start()
    yield harness
    harness.stop()


def events(body: bytes) -> dict[str, Any]:
    feed = Calendar.from_ical(body)
    return {str(e["UID"]): e for e in feed.walk("VEVENT")}


def test_the_ical_feed_parses_and_holds_the_release_and_the_freezes(setup, api_server):
    admin = api_server.admin()
    secret = api_server.secrets["root"]
    plain = api_server.client(None)

    response = plain.get("/api/v1/calendar.ics", params={"token": secret})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    feed = Calendar.from_ical(response.content)
    assert str(feed["VERSION"]) == "2.0" and "Interlock" in str(feed["PRODID"])
    found = events(response.content)
    release = found[f"release-{setup['api'].id}@interlock"]
    assert release.decoded("DTSTART") == setup["at"]
    assert release.decoded("DTEND") == setup["at"] + timedelta(minutes=30)
    assert str(release["SUMMARY"]) == f"Release {setup['api'].id}: api@1.4.2"
    assert "PAY-9: fee rules" in str(release["DESCRIPTION"])
    assert "alice" in str(release["DESCRIPTION"])
    assert release["CATEGORIES"].cats == ["staging", "production"]
    assert "DTSTAMP" in release
    freezes = [e for uid, e in found.items() if uid.startswith("freeze-")]
    by_summary = {str(e["SUMMARY"]): e for e in freezes}
    assert set(by_summary) == {
        "Freeze (staging, production): year-end freeze",
        "Freeze (production): Black Friday",
    }
    year_end = by_summary["Freeze (staging, production): year-end freeze"]
    assert (year_end.decoded("DTSTART"), year_end.decoded("DTEND")) == setup["freeze"]
    assert year_end["CATEGORIES"].cats == ["staging", "production"]
    assert str(by_summary["Freeze (production): Black Friday"]["LOCATION"]) == "production"
    assert len(found) == 4  # api, web, two freezes

    again = admin.get("/api/v1/calendar.ics")  # a bearer header works too; UIDs are stable
    assert again.status_code == 200 and set(events(again.content)) == set(found)

    as_json = admin.get("/api/v1/calendar", params={"days": 400}).json()
    assert len(as_json["releases"]) == 3 and as_json["feed"] == "/api/v1/calendar.ics"
    assert as_json["releases"][0]["uid"] == f"release-{setup['api'].id}@interlock"


def test_the_feed_needs_a_token_and_shows_only_readable_releases(setup, api_server):
    plain = api_server.client(None)
    assert plain.get("/api/v1/calendar.ics").status_code == 401
    refused = plain.get("/api/v1/calendar.ics", params={"token": "ilk_not-a-token"})
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    api_server.user("viewer")
    secret = api_server.secrets["viewer"]
    # only the feed takes ?token=: every other route wants the header
    assert plain.get("/api/v1/calendar", params={"token": secret}).status_code == 401

    found = events(plain.get("/api/v1/calendar.ics", params={"token": secret}).content)
    releases = [uid for uid in found if uid.startswith("release-")]
    assert releases == [f"release-{setup['web'].id}@interlock"]
    assert sum(uid.startswith("freeze-") for uid in found) == 2

    api_server.user("nobody")  # may read nothing: no releases, but the freezes
    found = events(
        plain.get("/api/v1/calendar.ics", params={"token": api_server.secrets["nobody"]}).content
    )
    assert sorted(uid.split("-")[0] for uid in found) == ["freeze", "freeze"]

    # the token is not written to the audit log with the failed attempt
    with setup["pilot"].engine.db.read() as tx:
        failed = [e for e in tx.list_audit(actions=["auth.failed"], limit=100)]
    assert failed and all("ilk_not-a-token" not in e.body for e in failed)
    assert plain.get("/api/v1/calendar.ics", params={"days": 0, "token": secret}).status_code == 422


def test_the_calendar_json_gives_each_environments_deploy_windows(setup, api_server):
    viewer = api_server.user("viewer")
    found = viewer.get("/api/v1/calendar").json()
    assert found["windows"] == [
        {"environment": "staging", "timezone": "Europe/Berlin", "allow": []},
        {
            "environment": "production",
            "timezone": "Europe/Berlin",
            "allow": [{"days": ["mon", "tue", "wed", "thu"], "from": "09:00", "to": "16:00"}],
        },
    ]
