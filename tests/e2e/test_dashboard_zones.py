"""Playwright + Chromium: a project's time zone drives the dashboard's ranges and day buckets,
and the ranking panels show their ``limit`` honestly (an "other" row with "N more")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from ._dashboard import Watch, axe_violations, login, new_context, shot, signup, wait_loaded
from ._dashboard import browser as browser  # the fixture, re-exported
from .conftest import LiveServer

#: Nov 2 in UTC; in Tokyo (UTC+9) the 20:00 UTC calls are already Nov 3.
DAY_RANGE = "range=custom&from=2026-11-02&to=2026-11-02"
JOBS = 11        # jobs j01..j11 in the morning (UTC), job k with k calls
NIGHT_CALLS = 3  # job "night": calls at 20:00 UTC
SHOWN = 8        # the panels' limit (overview.js TOP_LIMIT)


@dataclass
class Zoned:
    url: str
    email: str
    token: str
    project: dict[str, Any]

    def get(self, path: str, **params: Any) -> Any:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            response = http.get(path, params=params,
                                headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.text
        return response.json()["data"]


def _event(when: str, job: str, **fields: Any) -> dict[str, Any]:
    return {"schema_version": 1, "id": str(uuid.uuid4()), "provider": "openai",
            "model": "gpt-4o", "operation": "chat.completions", "timestamp": when,
            "usage": {"input_tokens": 1000, "output_tokens": 100}, "status": "ok",
            "job_id": job, **fields}


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    """A live server and a UTC project with 66 morning calls over 11 jobs, users and team tags,
    and 3 evening calls."""
    server = LiveServer(f"sqlite:///{tmp_path_factory.mktemp('zones') / 'llmlab.db'}").start()
    try:
        email, token = signup(server.url)
        auth = {"Authorization": f"Bearer {token}"}
        events = []
        for k in range(1, JOBS + 1):
            extra = {"tags": {"team": f"t{k:02d}"}}
            if k > 1:
                extra["user_id"] = f"user-{k:02d}"
            events += [_event(f"2026-11-02T10:{k:02d}:{n:02d}Z", f"j{k:02d}", **extra)
                       for n in range(k)]
        events += [_event(f"2026-11-02T20:0{n}:00Z", "night") for n in range(NIGHT_CALLS)]
        with httpx.Client(base_url=server.url, timeout=30) as http:
            project = http.post("/api/projects", headers=auth, json={"name": "Zones"}).json()["data"]
            stored = http.post(f"/api/events/track?project={project['id']}", headers=auth,
                               json={"events": events})
            assert stored.json()["data"]["accepted"] == len(events)
        yield Zoned(server.url, email, token, project)
    finally:
        server.stop()


def _requests(page: Any, path: str) -> list[dict[str, str]]:
    """Collect the query of every request to ``path`` the page makes from now on."""
    from urllib.parse import parse_qs, urlsplit

    seen: list[dict[str, str]] = []
    page.on("request", lambda r: seen.append(
        {k: v[0] for k, v in parse_qs(urlsplit(r.url).query).items()})
        if urlsplit(r.url).path == path else None)
    return seen


def _series(page: Any) -> tuple[list[str], list[float]]:
    x = page.evaluate("() => document.getElementById('chart-timeseries').data[0].x")
    y = page.evaluate("() => document.getElementById('chart-timeseries').data[0].y")
    return list(x), list(y)


def _top_rows(page: Any, panel: str) -> list[list[str]]:
    rows = page.locator(f"#top-{panel} tr").all()
    return [[c.strip() for c in row.locator("td").all_text_contents()] for row in rows[1:]]


class TestProjectZone:
    """Setting a project's zone moves the range, its day buckets and the presets."""

    def test_zone_moves_days_and_survives_reload(self, zoned: Zoned, browser: Any) -> None:
        """UTC: Nov 2 holds every call; after an admin sets Asia/Tokyo on the settings page,
        Nov 2 (Tokyo) leaves the evening calls out, the label and requests use the zone, and a
        reload keeps it."""
        context = new_context(browser, timezone_id="America/New_York")  # neither zone
        page = context.new_page()
        watch = Watch(page, zoned.url)
        pid = zoned.project["id"]
        login(page, zoned.url, zoned.email, f"/?project={pid}&{DAY_RANGE}")
        label = page.text_content("#range-label")
        assert label == "Custom: 2 Nov 2026 (UTC)", label
        x, y = _series(page)
        total = JOBS * (JOBS + 1) // 2 + NIGHT_CALLS
        assert x == ["2026-11-02"] and y == [pytest.approx(0.0035 * total)]
        assert page.text_content("#card-calls") == f"{total:,}"
        assert page.text_content("#tz") == "UTC"

        page.goto(f"{zoned.url}/?project={pid}&view=projects")
        wait_loaded(page)
        page.click(f"button[aria-label='Change the time zone of {zoned.project['name']}']")
        page.fill(f"input[aria-label='Time zone of {zoned.project['name']}']", "Mars/Olympus")
        page.click("#m-projects .zone button[type=submit]")
        page.wait_for_function("() => (document.querySelector('#m-projects .zone .error')"
                               "?.textContent || '').includes('time zone')")
        page.fill(f"input[aria-label='Time zone of {zoned.project['name']}']", "Asia/Tokyo")
        page.click("#m-projects .zone button[type=submit]")
        page.wait_for_function("() => (document.querySelector('#m-projects .zone')"
                               "?.textContent || '').startsWith('Asia/Tokyo')")
        assert zoned.get(f"/api/projects/{pid}")["timezone"] == "Asia/Tokyo"
        shot(page, "dashboard-project-zone")
        # Renaming goes through the same in-place form: the name changes, the zone stays.
        old_name = zoned.project["name"]
        page.click(f"button[aria-label='Rename {old_name}']")
        page.fill(f"input[aria-label='New name of {old_name}']", "Zoned shop")
        page.click("#m-projects .rename button[type=submit]")
        page.wait_for_function("() => (document.querySelector('#m-projects .rename')"
                               "?.textContent || '').startsWith('Zoned shop')")
        renamed = zoned.get(f"/api/projects/{pid}")
        assert (renamed["name"], renamed["timezone"]) == ("Zoned shop", "Asia/Tokyo")

        series_calls = _requests(page, "/api/costs/timeseries")
        page.goto(f"{zoned.url}/?project={pid}&{DAY_RANGE}")
        wait_loaded(page)
        for _ in range(2):
            assert page.text_content("#range-label") == "Custom: 2 Nov 2026 (Asia/Tokyo)"
            assert page.text_content("#tz") == "Asia/Tokyo"
            x, y = _series(page)
            morning = JOBS * (JOBS + 1) // 2
            assert x == ["2026-11-02"] and y == [pytest.approx(0.0035 * morning)]
            assert page.text_content("#card-calls") == f"{morning:,}"
            assert series_calls[-1]["tz"] == "Asia/Tokyo"
            assert series_calls[-1]["start"] == "2026-11-01T15:00:00.000Z"
            assert series_calls[-1]["end"] == "2026-11-02T15:00:00.000Z"
            page.reload()
            wait_loaded(page)

        # Presets are computed in the zone too: "today" starts at Tokyo's midnight.
        summaries = _requests(page, "/api/costs/summary")
        page.select_option("#range", "today")
        page.wait_for_function("() => new URLSearchParams(location.search).get('range') === 'today'")
        wait_loaded(page)
        tokyo = ZoneInfo("Asia/Tokyo")
        midnight = datetime.now(tokyo).replace(hour=0, minute=0, second=0, microsecond=0)
        expected = midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert any(q.get("start") == expected and q.get("tz") == "Asia/Tokyo" for q in summaries)
        assert page.text_content("#range-label").endswith("(Asia/Tokyo)")
        # This month's card starts on the 1st in Tokyo.
        first = midnight.replace(day=1).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert any(q.get("start") == first and q.get("tz") == "Asia/Tokyo" for q in summaries)
        # A new budget's periods default to the project's zone.
        page.goto(f"{zoned.url}/?project={pid}&view=budgets")
        wait_loaded(page)
        assert page.input_value("#b-timezone") == "Asia/Tokyo"
        watch.assert_clean()
        context.close()


class TestRankingLimit:
    """The job, user and tag panels ask for the top 8 and show the rest honestly."""

    def test_other_row_and_n_more(self, zoned: Zoned, browser: Any) -> None:
        """Each panel shows 8 named rows, the calls without the dimension, and "N more" with
        the API's ``other`` sums; the requests carry ``limit``."""
        context = new_context(browser)
        page = context.new_page()
        watch = Watch(page, zoned.url)
        pid = zoned.project["id"]
        tz = zoned.get(f"/api/projects/{pid}")["timezone"]
        summaries = _requests(page, "/api/costs/summary")
        login(page, zoned.url, zoned.email, f"/?project={pid}&{DAY_RANGE}")
        page.wait_for_selector("#top-tag tr.other")
        wait_loaded(page)
        assert {q["group_by"]: q.get("limit") for q in summaries
                if q.get("group_by") in ("job", "user", "tag:team")} == {
            "job": str(SHOWN), "user": str(SHOWN), "tag:team": str(SHOWN)}
        start = datetime(2026, 11, 2, tzinfo=ZoneInfo(tz))
        end = datetime(2026, 11, 3, tzinfo=ZoneInfo(tz))
        window = {"project": pid, "start": start.isoformat(), "end": end.isoformat()}
        for panel, group in (("job", "job"), ("user", "user"), ("tag", "tag:team")):
            api = zoned.get("/api/costs/summary", group_by=group, limit=SHOWN, **window)
            rows = _top_rows(page, panel)
            named = [g for g in api["groups"] if g["key"] is not None]
            assert [r[0] for r in rows[:len(named)]] == [g["key"] for g in named], panel
            assert page.locator(f"#top-{panel} tr:not(.other):not(.unnamed) td a").count() == len(named)
            more = api["group_count"] - len(api["groups"])
            assert more > 0 and api["other"] is not None
            assert rows[-1][:2] == [f"{more} more", str(api["other"]["calls"])], panel
            if any(g["key"] is None for g in api["groups"]):
                assert any(r[0] == f"(no {panel if panel != 'tag' else 'team'})" for r in rows)
            shown_calls = sum(int(r[1].replace(",", "")) for r in rows)
            assert shown_calls == api["totals"]["calls"], panel  # nothing hidden, nothing twice
        assert axe_violations(page) == []
        shot(page, "dashboard-top-other")
        watch.assert_clean()
        context.close()
