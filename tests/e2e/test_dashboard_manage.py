"""The dashboard's management flows in headless Chromium against a live server: a budget
created and seen as a bar (edited, deleted, its alerts listed), an API key shown once and
revoked, a new project's onboarding until its first event (sent by the real SDK with the
snippet the page shows), a webhook created and sent a test (its delivery log), a member
invited and accepting. Each flow asserts on what the page shows and on what the API then says.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest

import llmlab
from llmlab.testing import FakeProvider, FakeUsage

from ._dashboard import Site, Watch, login, new_context, query, shot, signup, wait_loaded
from ._dashboard import browser as browser  # the fixture, re-exported
from ._dashboard import site as site  # the fixture, re-exported


def _open(browser: Any, site: Site, path: str = "/", email: str | None = None) -> tuple[Any, Any, Watch]:
    context = new_context(browser)
    page = context.new_page()
    watch = Watch(page, site.url)
    login(page, site.url, email or site.email, path)
    return context, page, watch


def _tab(page: Any, name: str) -> None:
    page.click(f"#tabs a[data-page='{name}']")
    page.wait_for_function("() => (new URLSearchParams(location.search).get('view') || 'overview')"
                           f" === '{name}'")
    wait_loaded(page)


class TestBudgets:
    def test_create_a_budget_see_its_bar_edit_and_delete_it(self, site: Site, browser: Any) -> None:
        """A budget made with the form shows as a bar with its spend; its alerts are listed;
        the edit form lives in the URL (reload keeps it); Delete asks once more, then it is gone."""
        context, page, watch = _open(browser, site)
        _tab(page, "budgets")
        assert "No budgets yet" in page.text_content("#m-budgets")
        page.fill("#b-name", "Daily cap")
        page.fill("#b-amount", "1")
        page.select_option("#b-period", "daily")
        page.fill("#b-thresholds", "50, 80, 100")
        page.click("#b-submit")
        page.wait_for_selector("#m-budgets .budget")
        row = page.locator("#m-budgets .budget")
        spent = site.api("GET", "/api/budgets/status", params={"project": site.project["id"]}
                         ).json()["data"]["budgets"][0]
        assert spent["name"] == "Daily cap" and float(spent["spent"]) == 0.7  # 10 x $0.07
        assert "Daily cap · daily" in row.text_content() and "$0.70 of $1.00" in row.text_content()
        width = page.evaluate("document.querySelector('#m-budgets .bar-fill').style.width")
        assert float(width.rstrip("%")) == 70
        assert row.locator(".tick").count() == 3
        # Passing 50 % recorded an alert: the history lists it.
        page.wait_for_selector("#m-alerts tbody tr")
        assert "Daily cap" in page.text_content("#m-alerts") and "50%" in page.text_content("#m-alerts")
        shot(page, "dashboard-budgets")

        row.locator("a", has_text="Edit").click()
        page.wait_for_function("() => new URLSearchParams(location.search).get('key') !== null")
        wait_loaded(page)
        assert query(page)["key"] == str(spent["id"])
        page.reload()  # the form being edited is in the URL
        wait_loaded(page)
        assert page.input_value("#b-name") == "Daily cap" and page.input_value("#b-period") == "daily"
        assert page.text_content("#b-submit") == "Save budget"
        page.fill("#b-amount", "40")
        page.click("#b-submit")
        page.wait_for_function("() => !new URLSearchParams(location.search).has('key')")
        wait_loaded(page)
        assert "of $40.00" in page.text_content("#m-budgets")
        budget = site.api("GET", f"/api/budgets/{spent['id']}").json()["data"]
        assert float(budget["amount"]) == 40

        # The overview's panel shows it too, and points to this page when there is none.
        delete = page.locator("#m-budgets .budget button", has_text="Delete")
        delete.click()
        assert page.locator("#m-budgets .budget button", has_text="Confirm delete").count() == 1
        page.locator("#m-budgets .budget button", has_text="Confirm delete").click()
        page.wait_for_selector("#m-budgets .empty")
        assert site.api("GET", f"/api/budgets/{spent['id']}").status_code == 404
        _tab(page, "overview")
        assert page.locator("#budgets a", has_text="Create a budget").count() == 1
        watch.assert_clean()
        context.close()


class TestKeys:
    def test_a_key_is_shown_once_works_and_is_revoked(self, site: Site, browser: Any) -> None:
        """A new key is shown once (then never again), reads with its scope, and stops working
        once revoked from the page."""
        context, page, watch = _open(browser, site)
        _tab(page, "keys")
        page.fill("#k-name", "reporting")
        page.uncheck("#key-form input[value=ingest]")
        page.check("#key-form input[value=read]")
        page.click("#k-submit")
        page.wait_for_selector("#k-new:not([hidden])")
        secret = page.text_content("#k-secret") or ""
        assert len(secret) > 20
        shot(page, "dashboard-key-created")
        listed = site.api("GET", "/api/keys", params={"project": site.project["id"]}).json()["data"]
        mine = next(k for k in listed if k["name"] == "reporting")
        assert secret.startswith(mine["prefix"]) and mine["scopes"] == ["read"]
        row = page.locator(f"#m-keys tr[data-id='{mine['id']}']")
        assert "reporting" in row.text_content() and "active" in row.text_content()
        reads = site.api("GET", "/api/events", token=secret, params={"limit": 1})
        assert reads.status_code == 200

        page.click("#k-done")
        assert page.locator("#k-new").is_hidden() and secret not in page.content()
        page.reload()
        wait_loaded(page)
        assert secret not in page.content()  # shown once: never again
        row.locator("button", has_text="Revoke").click()
        row.locator("button", has_text="Confirm revoke").click()
        page.wait_for_function(
            f"() => (document.querySelector(\"#m-keys tr[data-id='{mine['id']}']\") || {{}})"
            ".textContent?.includes('revoked')")
        assert site.api("GET", "/api/events", token=secret, params={"limit": 1}).status_code == 401
        watch.assert_clean()
        context.close()


class TestOnboarding:
    def test_a_new_project_waits_for_its_first_event_then_shows_the_overview(
            self, site: Site, browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Creating a project shows its ingest key once and the exact llmlab.init(...) call;
        running that snippet and one OpenAI call through the real SDK turns the page into the
        project's overview by itself (polling)."""
        context, page, watch = _open(browser, site)
        _tab(page, "projects")
        page.fill("#p-name", "Checkout assistant")
        page.fill("#p-slug", "checkout")
        page.click("#p-submit")
        page.wait_for_selector("#onboarding-view:not([hidden])")
        assert page.locator("#overview-view").is_hidden()
        assert page.text_content("#ob-project") == "Checkout assistant"
        key = page.text_content("#ob-key") or ""
        snippet = page.text_content("#ob-snippet") or ""
        assert key and f'api_key="{key}"' in snippet and f'base_url="{site.url}"' in snippet
        assert 'project="checkout"' in snippet and snippet.startswith("import llmlab\n")
        assert "Waiting for the first event" in page.text_content("#ob-status")
        shot(page, "dashboard-onboarding")

        monkeypatch.setenv("LLMLAB_HOME", str(tmp_path / "sdk"))
        with FakeProvider(usage=FakeUsage(input_tokens=1200, output_tokens=300)) as fake:
            exec(compile(snippet, "<the page's snippet>", "exec"), {})  # the page's own text
            try:
                client = openai.OpenAI(api_key="sk-test", base_url=fake.openai_base_url, max_retries=0)
                client.chat.completions.create(model="gpt-4o-mini",
                                               messages=[{"role": "user", "content": "hi"}])
                assert llmlab.flush(10)
            finally:
                llmlab.shutdown(5)
        page.wait_for_selector("#overview-view:not([hidden])", timeout=15_000)
        wait_loaded(page)
        assert page.locator("#onboarding-view").is_hidden()
        assert page.text_content("#card-calls") == "1"
        assert page.locator("#events tbody tr td:nth-child(2)").all_text_contents() == ["gpt-4o-mini"]
        page.reload()
        wait_loaded(page)
        assert key not in page.content()  # the key was shown once
        watch.assert_clean()
        context.close()


class TestWebhooks:
    def test_create_send_a_test_read_the_log_and_delete(self, site: Site, browser: Any) -> None:
        """A webhook made on the page gets its secret shown once; "Send test" makes the server
        POST a signed ping to the receiver; the list and the delivery log say it was delivered."""
        context, page, watch = _open(browser, site)
        _tab(page, "webhooks")
        assert "No webhooks yet" in page.text_content("#m-webhooks")
        page.fill("#w-name", "ops alerts")
        page.fill("#w-url", site.receiver.url)
        page.click("#w-submit")
        page.wait_for_selector("#w-new:not([hidden])")
        assert len(page.text_content("#w-secret") or "") > 20
        hook = site.api("GET", "/api/webhooks", params={"project": site.project["id"]}).json()["data"][0]
        row = page.locator(f"#m-webhooks tr[data-id='{hook['id']}']")
        assert site.receiver.url in row.text_content() and "none yet" in row.text_content()

        row.locator("button", has_text="Send test").click()
        page.wait_for_function("() => document.getElementById('w-notice').textContent.includes('queued')")
        page.wait_for_function(
            f"() => (document.querySelector(\"#m-webhooks tr[data-id='{hook['id']}']\") || {{}})"
            ".textContent?.includes('none yet') === false", timeout=15_000)
        assert [json.loads(body)["type"] for _, body in site.receiver.requests] == ["ping"]
        assert site.receiver.requests[0][0]["X-LLMLab-Signature"].startswith("sha256=")

        page.locator(f"#m-webhooks tr[data-id='{hook['id']}'] a", has_text="Delivery log").click()
        page.wait_for_function("() => new URLSearchParams(location.search).get('key') !== null")
        wait_loaded(page)
        page.wait_for_selector("#m-deliveries tbody tr")
        log = page.locator("#m-deliveries tbody tr").first.text_content() or ""
        assert "ping" in log and "delivered" in log and "200" in log
        shot(page, "dashboard-webhooks")

        page.locator(f"#m-webhooks tr[data-id='{hook['id']}'] button", has_text="Delete").click()
        page.locator(f"#m-webhooks tr[data-id='{hook['id']}'] button", has_text="Confirm delete").click()
        page.wait_for_function("() => !new URLSearchParams(location.search).has('key')")
        wait_loaded(page)
        assert "No webhooks yet" in page.text_content("#m-webhooks")
        watch.assert_clean()
        context.close()


class TestMembers:
    def test_invite_a_member_who_accepts_then_change_their_role(self, site: Site, browser: Any) -> None:
        """The owner invites a colleague as viewer; the colleague accepts on their Projects
        page and sees the project; the owner then makes them a member."""
        guest, guest_token = signup(site.url)
        context, page, watch = _open(browser, site)
        _tab(page, "members")
        assert site.email in page.text_content("#m-members")
        page.fill("#i-email", guest)
        page.select_option("#i-role", "viewer")
        page.click("#i-submit")
        page.wait_for_function("() => document.getElementById('m-invitations').textContent"
                               f".includes('{guest}')")
        assert "viewer" in page.text_content("#m-invitations")
        shot(page, "dashboard-members")

        other = new_context(browser)
        theirs = other.new_page()
        login(theirs, site.url, guest, "/")
        assert query(theirs).get("view") == "projects"  # no project yet: the projects page
        # Invitations go to an email: the page asks for the mailed token first.
        theirs.wait_for_selector("#verify-panel:not([hidden])")
        theirs.fill("#v-token", site.mailed_token(guest))
        theirs.click("#v-submit")
        theirs.wait_for_selector("#my-invitations-panel:not([hidden])")
        assert theirs.locator("#verify-panel").is_hidden()
        assert "Support bot" in theirs.text_content("#m-my-invitations")
        theirs.locator("#m-my-invitations button", has_text="Accept").click()
        theirs.wait_for_function("() => [...document.querySelectorAll('#project option')]"
                                 ".some((o) => o.textContent === 'Support bot')")
        theirs.wait_for_function("() => document.getElementById('m-projects').textContent"
                                 ".includes('viewer')")
        assert query(theirs)["project"] == str(site.project["id"])
        assert theirs.locator("#notice").is_hidden()  # no more "create your first project"
        other.close()

        page.reload()
        wait_loaded(page)
        me = site.api("GET", f"/api/projects/{site.project['id']}/members").json()["data"]
        joined = next(m for m in me if m["email"] == guest)
        select = page.get_by_label(f"Role of {guest}")
        assert select.input_value() == "viewer"
        select.select_option("member")
        page.wait_for_timeout(500)
        me = site.api("GET", f"/api/projects/{site.project['id']}/members").json()["data"]
        assert next(m for m in me if m["user_id"] == joined["user_id"])["role"] == "member"
        assert guest_token
        watch.assert_clean()
        context.close()


def _track(site: Site, model: str) -> None:
    """One event in the site's project, through the API (a user token may ingest with ?project=)."""
    event = {"schema_version": 1, "id": str(uuid.uuid4()), "provider": "openai", "model": model,
             "operation": "chat.completions", "timestamp": datetime.now(UTC).isoformat(),
             "usage": {"input_tokens": 100, "output_tokens": 10}, "status": "ok"}
    stored = site.api("POST", "/api/events/track", params={"project": site.project["id"]}, json=event)
    assert stored.json()["data"]["accepted"] == 1


class TestAutoRefresh:
    def test_the_overview_follows_new_events_and_pauses_while_hidden(self, site: Site,
                                                                      browser: Any) -> None:
        """A new event shows up on the open overview (cards, events tail) within a refresh
        period, without a reload; a hidden tab asks the server nothing; showing it again
        refreshes at once."""
        context, page, watch = _open(browser, site)
        calls = int(page.text_content("#card-calls") or "0")
        assert calls >= 10 and "every 5 s" in page.text_content("#live")
        page.evaluate("window.__same_page = true")
        _track(site, "gpt-4.1-nano")
        page.wait_for_function(f"() => document.getElementById('card-calls').textContent === '{calls + 1}'",
                               timeout=12_000)
        page.wait_for_function("() => document.querySelector('#events tbody tr td:nth-child(2)')"
                               ".textContent === 'gpt-4.1-nano'", timeout=5_000)  # the tail too
        assert page.evaluate("window.__same_page") is True  # redrawn in place, not reloaded

        page.evaluate("Object.defineProperty(document, 'visibilityState', {value: 'hidden',"
                      " configurable: true}); document.dispatchEvent(new Event('visibilitychange'))")
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/api/" in r.url else None)
        assert "Paused" in page.text_content("#live")
        _track(site, "gpt-4.1-mini")
        page.wait_for_timeout(6_500)  # more than a refresh period
        assert asked == [] and page.text_content("#card-calls") == str(calls + 1)
        page.evaluate("Object.defineProperty(document, 'visibilityState', {value: 'visible',"
                      " configurable: true}); document.dispatchEvent(new Event('visibilitychange'))")
        page.wait_for_function(f"() => document.getElementById('card-calls').textContent === '{calls + 2}'",
                               timeout=3_000)
        assert "every 5 s" in page.text_content("#live")
        watch.assert_clean()
        context.close()
