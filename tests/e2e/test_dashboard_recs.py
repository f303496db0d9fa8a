"""The dashboard's recommendation decisions and event links in headless Chromium against a
live server: a recommendation dismissed (it stays dismissed on reload, "show dismissed" lists
it, Restore brings it back) and snoozed for 7 days; an event opened from a bare link on a fresh
page (read by id, whatever page it is on); a tag's detail page listing that tag's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ._dashboard import Watch, new_context, query, shot, wait_loaded
from ._dashboard import browser as browser  # the fixture, re-exported
from ._dashboard_world import RICH_ID, World, api_get, sign_in
from ._dashboard_world import world as world  # the fixture, re-exported


def _open(browser: Any, world: World, path: str = "/") -> tuple[Any, Any, Watch]:
    context = new_context(browser)
    page = context.new_page()
    watch = Watch(page, world.url)
    sign_in(page, world, path)
    return context, page, watch


def _recs(world: World, **params: Any) -> list[dict[str, Any]]:
    data = api_get(world, "/api/recommendations", project=world.main["id"], days=30, **params)
    return list(data["recommendations"])


def _card(page: Any, rec_id: str) -> Any:
    return page.locator(f"#recommendations .rec[data-id='{rec_id}']")


class TestRecommendationDecisions:
    def test_dismiss_survives_a_reload_and_restore_brings_it_back(self, world: World,
                                                                  browser: Any) -> None:
        """Dismiss hides the card for the project (the API agrees), a reload keeps it hidden,
        "show dismissed" lists it as dismissed with Restore, and Restore shows it again."""
        before = _recs(world)
        assert before, "the seeded world has recommendations"
        target = before[0]
        context, page, watch = _open(browser, world, f"/?project={world.main['id']}")
        page.wait_for_selector(f"#recommendations .rec[data-id='{target['id']}']")
        card = _card(page, target["id"])
        assert target["title"] in card.text_content()
        card.locator("button[data-action='dismiss']").click()
        page.wait_for_selector(f"#recommendations .rec[data-id='{target['id']}']", state="detached")
        assert target["id"] not in {r["id"] for r in _recs(world)}
        assert "1 dismissed or snoozed" in page.text_content("#recommendations")

        page.reload()
        wait_loaded(page)
        page.wait_for_selector("#recommendations .rec")
        assert _card(page, target["id"]).count() == 0
        page.check("#rec-show-dismissed")
        page.wait_for_selector(f"#recommendations .rec[data-id='{target['id']}'][data-state='dismissed']")
        hidden = _card(page, target["id"])
        assert "Dismissed" in hidden.text_content()
        assert hidden.locator("button[data-action='dismiss']").count() == 0
        shot(page, "dashboard-recommendations-dismissed")
        hidden.locator("button[data-action='restore']").click()
        page.wait_for_selector(f"#recommendations .rec[data-id='{target['id']}'][data-state='active']")
        assert target["id"] in {r["id"] for r in _recs(world)}
        watch.assert_clean()
        context.close()

    def test_snooze_for_seven_days(self, world: World, browser: Any) -> None:
        """Snooze 7 days hides the card until a week from now (the API's ``snoozed_until``)."""
        target = _recs(world)[:6][-1]  # the panel shows the six largest savings
        context, page, watch = _open(browser, world, f"/?project={world.main['id']}")
        page.wait_for_selector(f"#recommendations .rec[data-id='{target['id']}']")
        _card(page, target["id"]).locator("button[data-action='snooze']").click()
        page.wait_for_selector(f"#recommendations .rec[data-id='{target['id']}']", state="detached")
        got = next(r for r in _recs(world, include_dismissed="true") if r["id"] == target["id"])
        until = datetime.fromisoformat(got["snoozed_until"].replace("Z", "+00:00"))
        assert got["state"] == "snoozed"
        assert abs(until - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
        page.check("#rec-show-dismissed")
        page.wait_for_selector(f"#recommendations .rec[data-id='{target['id']}'][data-state='snoozed']")
        assert "Snoozed until" in _card(page, target["id"]).text_content()
        _card(page, target["id"]).locator("button[data-action='restore']").click()
        page.wait_for_selector(f"#recommendations .rec[data-id='{target['id']}'][data-state='active']")
        watch.assert_clean()
        context.close()


class TestEventLinks:
    def test_a_bare_event_link_opens_the_event_on_a_fresh_page(self, world: World,
                                                                browser: Any) -> None:
        """``?event=<id>`` on a fresh page reads the event by id: the oldest event (on no
        first page) and the rich one show their fields; another project's id is not found."""
        oldest = api_get(world, "/api/events", project=world.main["id"], start=(
            datetime.now(UTC) - timedelta(days=20)).isoformat(), limit=1000)["events"][-1]
        context, page, watch = _open(browser, world,
                                     f"/?project={world.main['id']}&event={oldest['id']}")
        page.wait_for_selector("#event-view:not([hidden]) #event-fields dl")
        assert query(page)["event"] == oldest["id"]
        assert page.text_content("#event-id") == oldest["id"]
        fields = page.text_content("#event-fields")
        assert oldest["model"] in fields and oldest["job_id"] in fields

        page.goto(f"{world.url}/?project={world.main['id']}&event={RICH_ID}")
        wait_loaded(page)
        page.wait_for_selector("#event-fields dl")
        fields = page.text_content("#event-fields")
        assert "APITimeoutError" in fields and "gpt-4o-latest" in fields and "staging" in fields

        theirs = api_get(world, "/api/events", project=world.other["id"], limit=1)["events"][0]
        page.goto(f"{world.url}/?project={world.main['id']}&event={theirs['id']}")
        wait_loaded(page)
        page.wait_for_selector("#event-fields .empty")
        assert "No such event in this project" in page.text_content("#event-fields")
        watch.assert_clean()
        context.close()

    def test_a_tag_page_lists_that_tags_events(self, world: World, browser: Any) -> None:
        """The tag detail page shows its events (``tag=feature:triage``) and their chart."""
        expected = api_get(world, "/api/events", project=world.main["id"], tag="feature:triage",
                           limit=25)["events"]
        assert expected and all(e["tags"]["feature"] == "triage" for e in expected)
        context, page, watch = _open(
            browser, world, f"/?project={world.main['id']}&view=tag&tag=feature&key=triage")
        page.wait_for_selector("#d-events tbody tr[data-event-id]")
        shown = page.eval_on_selector_all("#d-events tbody tr[data-event-id]",
                                          "rows => rows.map(r => r.dataset.eventId)")
        assert shown == [e["id"] for e in expected]
        assert page.is_visible("#d-events-wrap")
        assert "Not available" not in page.text_content("#d-chart")
        page.wait_for_function("() => document.getElementById('d-chart').data !== undefined")
        watch.assert_clean()
        context.close()
