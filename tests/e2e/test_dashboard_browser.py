"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright.

A real server (werkzeug, SQLite) gets a user, two projects and a few hundred realistic events
over the last two weeks (tests/e2e/_dashboard_world.py); the tests log in through the page and
prove each overview flow a person uses: charts drawn with that data, switching project,
following a recommendation, exporting CSV, the cards against the previous period, the early
forecast, sign-in errors and token refresh (views and layouts: test_dashboard_views.py;
management: test_dashboard_manage.py). Screenshots go to ``docs/screenshots/`` only when
``LLMLAB_SCREENSHOTS=1`` (tests/e2e/_dashboard.py). Every test also proves the page runs under
its CSP ('self' only) without a single violation and loads nothing from another origin. Without
Chromium the test FAILS (CI installs it: ``apt-get install chromium``); browsers are never
downloaded (no ``playwright install``).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ._dashboard import Watch, new_context, query, shot, wait_loaded
from ._dashboard import browser as browser  # the fixture, re-exported
from ._dashboard_world import (
    FEATURES,
    JOBS,
    MAIN_MODELS,
    MONEY,
    OTHER_MODELS,
    World,
    api_get,
    money_texts,
    sign_in,
    trace_values,
)
from ._dashboard_world import world as world  # the fixture, re-exported


class TestDashboardInBrowser:
    """The whole overview flow in headless Chromium against a live server."""

    def test_login_charts_switch_recommendation_export(self, world: World, browser: Any,
                                                        tmp_path: Path) -> None:
        """A user logs in, sees drawn charts of their data, switches project, follows a
        recommendation, exports CSV; the page stays within its CSP and its own origin."""
        context = new_context(browser, timezone_id="Europe/Paris", accept_downloads=True)
        page = context.new_page()
        watch = Watch(page, world.url)
        sign_in(page, world)

        # The token lives in sessionStorage, never in the URL (which holds only the view).
        assert page.evaluate("sessionStorage.getItem('llmlab.access')")
        assert "token" not in page.url and query(page) == {"project": str(world.main["id"])}

        # Cards, line chart and bars are drawn with the seeded data.
        assert page.text_content("#card-range").startswith("$")
        assert page.text_content("#card-month") != "—"
        assert page.locator("#chart-timeseries .main-svg").count() >= 1
        assert page.locator("#chart-timeseries .scatterlayer .trace").count() == 1
        costs = trace_values(page, "chart-timeseries", "y")
        assert sum(1 for c in costs if c > 0) >= 10  # two weeks of daily spend
        models = set(trace_values(page, "chart-model", "y"))
        assert models == {m[1] for m in MAIN_MODELS}
        assert page.locator("#chart-model .barlayer .point").count() == len(MAIN_MODELS)
        assert set(trace_values(page, "chart-provider", "y")) == {"openai", "anthropic", "google"}
        assert page.locator("#top-job tr").count() == len(JOBS) + 1  # + header
        assert page.locator("#top-user tr").count() >= 4
        assert page.locator("#tag-key option").all_text_contents() == ["feature", "env"]
        assert page.locator("#top-tag tr").count() == len(FEATURES) + 1
        assert page.locator("#events tbody tr").count() == 25
        assert page.locator("#more").is_visible()
        if world.budgets:
            assert page.locator("#budgets .budget").count() == 1
            assert page.locator("#budgets .tick").count() == 3
            assert "Monthly cap" in page.text_content("#budgets")
        else:
            assert "not available" in page.text_content("#budgets")
        # One money format on every panel ("$0.0600" beside "$0.10" was the bug).
        amounts = money_texts(page)
        assert len(amounts) > 50 and [a for a in amounts if not MONEY.match(a)] == []

        # Export: a CSV download of the range, fetched with the bearer header.
        with page.expect_download() as download_info:
            page.click("#export")
        download = download_info.value
        assert download.suggested_filename.startswith("llmlab-costs-")
        target = tmp_path / "export.csv"
        download.save_as(target)
        rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
        assert len(rows) == 401 + 1  # header + every event of the 30-day range

        # "Load more" appends the next page (cursor pagination of /api/events).
        page.click("#more")
        page.wait_for_function("() => document.querySelectorAll('#events tbody tr').length === 50")

        # Follow a recommendation: its evidence becomes the event filter, kept in the URL.
        if world.recommendations:
            cards = page.locator("#recommendations .rec")
            assert cards.count() >= 1
            assert "/mo" in cards.first.locator(".rec-saving").text_content()
            failed = page.locator("#recommendations .rec[data-kind='failed_calls']")
            card = failed.first if failed.count() else cards.first
            card.locator(".rec-foot a").click()
            page.wait_for_function(
                "() => document.querySelector('#f-model').value !== '' && "
                "[...document.querySelectorAll('#events tbody tr')].every((r) => "
                "r.children[1] && r.children[1].textContent === document.querySelector('#f-model').value)",
                timeout=10_000)
            model = page.input_value("#f-model")
            assert query(page)["f_model"] == model
            cells = page.locator("#events tbody tr td:nth-child(2)").all_text_contents()
            assert cells and set(cells) == {model}
            if failed.count():
                statuses = page.locator("#events tbody tr td:nth-child(9)").all_text_contents()
                assert set(statuses) == {"error"}
        else:
            assert "not available" in page.text_content("#recommendations")

        # Switch project: every panel shows the other project's data.
        page.select_option("#project", str(world.other["id"]))
        page.wait_for_function(
            "() => document.body.dataset.loading === 'false' && "
            "document.getElementById('chart-model').data && "
            "document.getElementById('chart-model').data[0].y.includes('claude-haiku-4-5')",
            timeout=20_000)
        assert set(trace_values(page, "chart-model", "y")) == {m[1] for m in OTHER_MODELS}
        assert set(trace_values(page, "chart-provider", "y")) == {"anthropic", "mistral"}
        # Redrawn on screen, not only in plotly's data (a placeholder once hid the new charts).
        assert page.locator("#chart-model .barlayer .point").count() == len(OTHER_MODELS)
        assert page.locator("#chart-provider .barlayer .point").count() == 2
        assert page.locator("#chart-timeseries .scatterlayer .trace").count() == 1
        assert page.locator("main .skeleton:visible").count() == 0
        # Its small amounts still get distinct money ticks by the one rule ($0.01, $0.02…).
        for chart, axis in (("chart-timeseries", "ytick"), ("chart-model", "xtick")):
            ticks = page.locator(f"#{chart} .{axis} text").all_text_contents()
            assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks
            assert all(MONEY.match(t) for t in ticks), ticks
        assert page.input_value("#f-model") == ""  # filters reset with the project
        assert page.locator("#events tbody tr").count() == 25
        if world.budgets:
            assert "No budgets yet" in page.text_content("#budgets")
        shot(page, "dashboard-project-switched")

        # Reload keeps the session (sessionStorage) and the chosen project (the URL).
        page.reload()
        wait_loaded(page)
        assert page.input_value("#project") == str(world.other["id"])

        page.click("#logout")
        page.wait_for_selector("#login-view:not([hidden])")
        assert page.evaluate("sessionStorage.getItem('llmlab.access')") is None
        watch.assert_clean()
        context.close()

    def test_recommendation_savings_are_per_month_whatever_the_range(self, world: World,
                                                                     browser: Any) -> None:
        """Savings come from a fixed 30-day window, so the "/mo" figures do not move when the
        range changes (the API extrapolates its window to a month: a 7-day window swung them)."""
        if not world.recommendations:
            pytest.skip("this server has no recommendations route")
        context = new_context(browser)
        page = context.new_page()
        watch = Watch(page, world.url)
        sign_in(page, world)
        before = page.locator("#recommendations .rec-saving").all_text_contents()
        assert before and "last 30 days" in page.text_content("#rec-window")
        with page.expect_request(lambda r: "/api/recommendations" in r.url) as asked:
            page.select_option("#range", "7d")
        assert parse_qs(urlsplit(asked.value.url).query)["days"] == ["30"]
        wait_loaded(page)
        assert query(page)["range"] == "7d"
        assert page.locator("#recommendations .rec-saving").all_text_contents() == before
        watch.assert_clean()
        context.close()

    def test_cards_compare_with_the_previous_period(self, world: World, browser: Any) -> None:
        """With "Last 7 days" the cards show the change against the 7 days before, with the
        previous amounts the API gives for that period."""
        context = new_context(browser)
        page = context.new_page()
        watch = Watch(page, world.url)
        sign_in(page, world, f"/?project={world.main['id']}&range=7d")
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        before = api_get(world, "/api/costs/summary", project=world.main["id"],
                      start=(start - (end - start)).isoformat(), end=start.isoformat())["totals"]
        calls = int(before["calls"])
        assert calls > 0  # the seed spans two weeks
        sub = page.text_content("#card-calls-sub")
        assert re.search("[+\u2212\u00b1][0-9.]+%", sub) and f"vs {calls:,} before" in sub
        assert "compared with" in page.text_content("#range-compare")
        shot(page, "dashboard-overview")
        watch.assert_clean()
        context.close()

    def test_thin_month_forecast_is_marked_uncertain(self, world: World, browser: Any) -> None:
        """On the 2nd of a month (a day and a half of data) the month-end forecast says it is
        uncertain; later in the month it is a plain run-rate figure."""
        now = datetime.now(UTC)
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        early = min(now, month + timedelta(hours=36))
        context = new_context(browser)
        page = context.new_page()
        page.clock.install(time=early)
        sign_in(page, world)
        card = page.locator("#card-forecast").locator("..")
        assert "uncertain" in (card.get_attribute("class") or "")
        assert page.text_content("#card-forecast").startswith("≈ $")
        assert "uncertain" in page.text_content("#card-forecast-sub")
        context.close()
        if now - month >= timedelta(days=3):
            context = new_context(browser)
            page = context.new_page()
            sign_in(page, world)
            assert page.text_content("#card-forecast-sub") == "at this month's run rate"
            context.close()

    def test_wrong_password_is_refused_on_the_page(self, world: World, browser: Any) -> None:
        """A wrong password shows an error on the login form and stores no token."""
        context = browser.new_context()
        page = context.new_page()
        page.goto(world.url + "/")
        page.fill("#email", world.email)
        page.fill("#password", "not the password")
        page.click("#login-submit")
        page.wait_for_function("() => document.getElementById('login-error').textContent !== ''")
        assert page.text_content("#login-error") == "Wrong email or password."
        assert page.evaluate("sessionStorage.getItem('llmlab.access')") is None
        assert page.locator("#app-view").is_hidden()
        context.close()

    def test_expired_access_token_is_refreshed(self, world: World, browser: Any) -> None:
        """With a bad access token the page refreshes through /api/auth/refresh and loads."""
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, world)
        page.evaluate("sessionStorage.setItem('llmlab.access', 'expired')")
        old_refresh = page.evaluate("sessionStorage.getItem('llmlab.refresh')")
        with page.expect_response(lambda r: r.url.endswith("/api/auth/refresh")) as refreshed:
            page.reload()
        assert refreshed.value.status == 200
        wait_loaded(page)
        assert page.evaluate("sessionStorage.getItem('llmlab.access')") != "expired"
        assert page.evaluate("sessionStorage.getItem('llmlab.refresh')") != old_refresh
        assert page.locator("#chart-model .main-svg").count() >= 1
        context.close()
