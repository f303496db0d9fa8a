"""The dashboard's views in the URL and its layouts, in headless Chromium: drill-down from the
overview to a job and one of its events, a custom range kept across a reload and the back
button, a shared link, dark mode, the phone layout and a failed panel's Retry (the seeded world
is tests/e2e/_dashboard_world.py; screenshots only with LLMLAB_SCREENSHOTS=1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ._dashboard import PASSWORD, Watch, new_context, query, shot, wait_loaded
from ._dashboard import browser as browser  # the fixture, re-exported
from ._dashboard_world import MAIN_MODELS, RICH_ID, RICH_JOB, World, api_get, sign_in, trace_values
from ._dashboard_world import world as world  # the fixture, re-exported


class TestNavigation:
    """The view lives in the URL: drill-down, event detail, ranges, reload and back."""

    def test_drill_from_overview_to_a_job_and_one_of_its_events(self, world: World,
                                                                 browser: Any) -> None:
        """Clicking a job opens its detail (cards, cost over time, only its events); clicking
        an event shows every stored field; reload shows the same event; back returns to the
        job, then to the overview; a model bar opens the model's detail."""
        context = new_context(browser)
        page = context.new_page()
        watch = Watch(page, world.url)
        sign_in(page, world)

        page.locator("#top-job a", has_text=RICH_JOB).click()
        wait_loaded(page)
        assert query(page) == {"project": str(world.main["id"]), "view": "job", "key": RICH_JOB}
        assert page.locator("#detail-view").is_visible() and page.locator("#overview-view").is_hidden()
        assert page.text_content("#detail-key") == RICH_JOB
        row = api_get(world, "/api/costs/summary", project=world.main["id"], group_by="job",
                   start=(datetime.now(UTC) - timedelta(days=29)).date().isoformat())
        mine = next(g for g in row["groups"] if g["key"] == RICH_JOB)
        assert page.text_content("#d-calls") == f"{mine['calls']:,}"
        assert page.text_content("#d-cache").endswith("%")
        assert page.locator("#d-chart .barlayer .point").count() >= 10
        assert sum(trace_values(page, "d-chart", "customdata")) == mine["calls"]
        jobs = page.locator("#d-events tbody tr td:nth-child(4)").all_text_contents()
        assert len(jobs) == 25 and set(jobs) == {RICH_JOB}
        shot(page, "dashboard-job-detail")

        # The newest event of the job is the seeded one with every field.
        page.locator(f"#d-events tr[data-event-id='{RICH_ID}']").click()
        wait_loaded(page)
        assert query(page)["view"] == "event" and query(page)["event"] == RICH_ID
        fields = page.text_content("#event-fields")
        for expected in ("APITimeoutError", "gpt-4o-latest", "default", "staging", "412 ms",
                         "2,311 ms", "4,096", "cache read tokens", "yes (stream ended early",
                         "feature", "triage", "app.triage", "cust-42"):
            assert expected in fields, expected
        assert "Job ticket-triage" in page.text_content("#event-crumbs")
        shot(page, "dashboard-event-detail")

        page.reload()  # a fresh page finds the event by its id and time
        wait_loaded(page)
        assert page.text_content("#event-id") == RICH_ID
        assert "APITimeoutError" in page.text_content("#event-fields")

        page.go_back()
        wait_loaded(page)
        assert page.locator("#detail-view").is_visible() and query(page)["key"] == RICH_JOB
        page.go_back()
        wait_loaded(page)
        assert page.locator("#overview-view").is_visible() and "view" not in query(page)

        # A bar of the model chart opens that model.
        # plotly listens on its drag layer above the bars: click where the bar is drawn.
        page.locator("#chart-model .barlayer .point path").last.click(force=True)
        page.wait_for_function("() => new URLSearchParams(location.search).get('view') === 'model'")
        wait_loaded(page)
        model = query(page)["key"]
        assert model in {m[1] for m in MAIN_MODELS}
        models = page.locator("#d-events tbody tr td:nth-child(2)").all_text_contents()
        assert models and set(models) == {model}
        watch.assert_clean()
        context.close()

    def test_custom_range_survives_reload_and_back(self, world: World, browser: Any) -> None:
        """A custom range (six days, both ends included) goes into the URL; the chart, cards and events
        cover exactly those days; a reload of that URL shows the same view; back undoes it."""
        context = new_context(browser)
        page = context.new_page()
        watch = Watch(page, world.url)
        sign_in(page, world)
        today = datetime.now(UTC).date()
        first, last = today - timedelta(days=9), today - timedelta(days=4)
        page.select_option("#range", "custom")
        page.fill("#from", last.isoformat())  # backwards: refused on the page
        page.fill("#to", first.isoformat())
        page.click("#apply-range")
        assert page.text_content("#notice") == "The last day is before the first."
        assert "range" not in query(page)
        page.fill("#from", first.isoformat())
        page.fill("#to", last.isoformat())
        page.click("#apply-range")
        page.wait_for_function("() => new URLSearchParams(location.search).get('range') === 'custom'")
        wait_loaded(page)
        assert query(page) == {"project": str(world.main["id"]), "range": "custom",
                                "from": first.isoformat(), "to": last.isoformat()}
        days = [first + timedelta(days=n) for n in range(6)]
        assert trace_values(page, "chart-timeseries", "x") == [d.isoformat() for d in days]
        assert page.locator("#chart-timeseries .scatterlayer .point").count() == 6
        spend = api_get(world, "/api/costs/summary", project=world.main["id"], start=first.isoformat(),
                     end=(last + timedelta(days=1)).isoformat())["totals"]
        assert page.text_content("#card-calls") == f"{spend['calls']:,}"
        times = page.locator("#events tbody tr td:nth-child(1)").all_text_contents()
        assert times and all(first.isoformat() <= t[:10] <= last.isoformat() for t in times)
        view = (page.text_content("#card-range"), page.text_content("#range-label"),
                trace_values(page, "chart-timeseries", "y"))

        page.reload()
        wait_loaded(page)
        assert page.input_value("#range") == "custom"
        assert page.input_value("#from") == first.isoformat() and page.input_value("#to") == last.isoformat()
        assert (page.text_content("#card-range"), page.text_content("#range-label"),
                trace_values(page, "chart-timeseries", "y")) == view
        assert "(UTC)" in view[1]

        page.go_back()
        wait_loaded(page)
        assert page.input_value("#range") == "30d" and "range" not in query(page)
        watch.assert_clean()
        context.close()

    def test_a_shared_link_opens_the_same_view(self, world: World, browser: Any) -> None:
        """Opening a URL with a grouping, tag key and filters (as a colleague would) signs in
        and then shows that exact view."""
        context = new_context(browser)
        page = context.new_page()
        sign_in(page, world, f"/?project={world.main['id']}&range=7d&by=hour&tag=env&f_status=error")
        assert page.input_value("#range") == "7d" and page.input_value("#interval") == "hour"
        assert page.input_value("#tag-key") == "env" and page.input_value("#f-status") == "error"
        statuses = page.locator("#events tbody tr td:nth-child(9)").all_text_contents()
        assert statuses and set(statuses) == {"error"}
        assert len(trace_values(page, "chart-timeseries", "x")) > 7 * 24 - 24
        context.close()


class TestLayout:
    """Dark mode, the phone layout, and failures a person can retry."""

    def test_dark_mode_follows_the_system_and_the_toggle(self, world: World, browser: Any) -> None:
        """A system in dark mode gets the dark page; the theme picker forces light or dark,
        the charts follow, and the choice outlives a reload."""
        context = new_context(browser, color_scheme="dark")
        page = context.new_page()
        watch = Watch(page, world.url)
        sign_in(page, world)
        background = "() => getComputedStyle(document.documentElement).backgroundColor"
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        assert page.evaluate(background) == "rgb(16, 20, 27)"
        page.select_option("#theme", "light")
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
        assert page.evaluate(background) == "rgb(246, 247, 249)"
        page.select_option("#theme", "dark")
        ink = page.evaluate("document.getElementById('chart-model').layout.font.color")
        assert ink == "#e6e9ef"
        page.reload()
        wait_loaded(page)
        assert page.input_value("#theme") == "dark"
        assert page.evaluate(background) == "rgb(16, 20, 27)"
        shot(page, "dashboard-dark", full_page=False)
        watch.assert_clean()
        context.close()

    def test_phone_layout_keeps_the_cost_column_visible(self, world: World, browser: Any) -> None:
        """At 390x844 nothing overflows the screen sideways; the events table scrolls in its
        own box with the Cost column pinned in view, before and after scrolling it."""
        context = new_context(browser, viewport={"width": 390, "height": 844}, is_mobile=True,
                           has_touch=True, device_scale_factor=2)
        page = context.new_page()
        watch = Watch(page, world.url)
        sign_in(page, world)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        wrap = page.locator("#events-wrap")
        wrap.scroll_into_view_if_needed()
        assert page.evaluate("(() => { const w = document.getElementById('events-wrap');"
                             " return w.scrollWidth > w.clientWidth; })()")
        cost = page.locator("#events th.cost")
        for scroll in (0, 10_000):
            page.evaluate(f"document.getElementById('events-wrap').scrollLeft = {scroll}")
            box = cost.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
            cell = page.locator("#events tbody tr td.cost").first.bounding_box()
            assert cell is not None and cell["x"] + cell["width"] <= 390
        page.evaluate("document.getElementById('events-wrap').scrollLeft = 0")
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "dashboard-phone", full_page=False)
        page.evaluate("document.getElementById('events-panel').scrollIntoView()")
        shot(page, "dashboard-phone-events", full_page=False)
        watch.assert_clean()
        context.close()

    def test_loading_placeholder_then_failure_with_retry(self, world: World, browser: Any) -> None:
        """While the time series is on its way its panel shows a busy placeholder; when the
        request fails the panel says so with a Retry button, and Retry draws the chart once
        the server answers again."""
        context = new_context(browser)
        page = context.new_page()
        held: list[Any] = []

        def flaky(route: Any) -> None:
            if not held:
                held.append(route)  # no answer yet: the panel waits
            else:
                route.continue_()

        page.route("**/api/costs/timeseries*", flaky)
        page.goto(world.url + "/")
        page.fill("#email", world.email)
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#chart-timeseries[aria-busy='true'] .skeleton")
        assert held
        held[0].fulfill(status=503, content_type="application/json",
                        body='{"success": false, "data": null, "error": {"type": "api_error",'
                             ' "code": "unavailable", "message": "try again later"}}')
        wait_loaded(page)
        panel = page.locator("#chart-timeseries")
        assert "Could not load: try again later" in panel.text_content()
        panel.locator("button.retry").click()
        page.wait_for_selector("#chart-timeseries .scatterlayer .trace")
        assert sum(1 for c in trace_values(page, "chart-timeseries", "y") if c > 0) >= 10
        context.close()
