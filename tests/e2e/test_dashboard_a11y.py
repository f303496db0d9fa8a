"""Accessibility of every dashboard page: axe-core (WCAG 2.1 A/AA and best practice, through
axe-playwright-python) finds no serious or critical violation on the sign-in form, sign-up
(with a field error), the password reset, the
overview (light and dark), a drill-down, an event, budgets (and a budget being edited),
projects, members, API keys (with a key shown once), webhooks with a delivery log, and a new
project's onboarding; and the pages work from the keyboard alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from ._dashboard import Site, login, new_context, query, signup, wait_loaded
from ._dashboard import axe_violations as violations
from ._dashboard import browser as browser  # the fixture, re-exported
from ._dashboard import site as site  # the fixture, re-exported


@pytest.fixture(scope="module")
def furnished(site: Site) -> dict[str, Any]:
    """The site with something on every page: a budget past a threshold (an alert), a
    webhook with a test delivery, a pending invitation, and a second project without events."""
    project = site.project["id"]
    budget = site.api("POST", "/api/budgets", json={"project_id": project, "name": "Daily cap",
                                                    "amount": "1", "period": "daily"}).json()["data"]
    hook = site.api("POST", "/api/webhooks", json={"project_id": project, "name": "ops",
                                                   "url": site.receiver.url}).json()["data"]
    assert site.api("POST", f"/api/webhooks/{hook['id']}/test").status_code == 202
    guest, _ = signup(site.url)
    assert site.api("POST", f"/api/projects/{project}/members",
                    json={"email": guest, "role": "viewer"}).status_code == 202
    empty = site.api("POST", "/api/projects", json={"name": "Empty one"}).json()["data"]
    return {"budget": budget["id"], "hook": hook["id"], "empty": empty["id"]}


def _visit(page: Any, site: Site, path: str, ready: str) -> list[str]:
    page.goto(site.url + path)
    wait_loaded(page)
    page.wait_for_selector(ready)
    return violations(page)


class TestAxe:
    def test_no_serious_or_critical_violation_on_any_page(self, site: Site, furnished: dict[str, Any],
                                                          browser: Any) -> None:
        """Every page, as a signed-in owner sees it, passes axe-core's serious and critical rules."""
        context = new_context(browser)
        page = context.new_page()
        page.goto(site.url + "/")
        page.wait_for_selector("#login-view:not([hidden])")
        found = {"sign-in": violations(page)}
        page.click("#to-signup")  # create an account, with the server's error beside a field
        page.fill("#su-email", "new-one@example.com")
        page.fill("#su-password", "password1234")
        page.click("#su-submit")
        page.wait_for_selector("#su-password-error:not(:empty)")
        found["sign-up"] = violations(page)
        page.click("#signup-form [data-show='signin']")
        page.click("#to-reset")  # forgot password: the request answered, the token form
        page.fill("#rs-email", "someone@example.com")
        page.click("#rs-request")
        page.wait_for_selector("#rs-sent:not(:empty)")
        found["password-reset"] = violations(page)
        login(page, site.url, site.email)
        p = f"?project={site.project['id']}"
        pages = {
            "overview": (f"/{p}", "#chart-model .main-svg"),
            "job": (f"/{p}&view=job&key=ticket-triage", "#d-events tbody tr"),
            "budgets": (f"/{p}&view=budgets", "#m-alerts tbody tr"),
            "budget-edit": (f"/{p}&view=budgets&key={furnished['budget']}", "#b-cancel:not([hidden])"),
            "projects": (f"/{p}&view=projects", "#m-projects tbody tr"),
            "members": (f"/{p}&view=members", "#m-invitations tbody tr"),
            "webhooks": (f"/{p}&view=webhooks&key={furnished['hook']}", "#m-deliveries tbody tr"),
            "onboarding": (f"/?project={furnished['empty']}", "#onboarding-view:not([hidden])"),
        }
        for name, (path, ready) in pages.items():
            found[name] = _visit(page, site, path, ready)
        page.goto(site.url + f"/{p}")
        wait_loaded(page)
        page.locator("#events tbody tr a").first.click()
        page.wait_for_selector("#event-fields dl")
        found["event"] = violations(page)
        page.goto(site.url + f"/{p}&view=keys")
        wait_loaded(page)
        page.click("#k-submit")
        page.wait_for_selector("#k-new:not([hidden])")
        found["keys"] = violations(page)
        page.select_option("#theme", "dark")
        found["keys-dark"] = violations(page)
        found["overview-dark"] = _visit(page, site, f"/{p}", "#chart-model .main-svg")
        context.close()
        phone = new_context(browser, viewport={"width": 390, "height": 844}, is_mobile=True)
        page = phone.new_page()
        login(page, site.url, site.email, f"/{p}")
        found["phone"] = violations(page)
        for name in ("budgets", "members", "keys", "webhooks"):  # nothing wider than a phone
            page.goto(site.url + f"/{p}&view={name}")
            wait_loaded(page)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        page.goto(site.url + f"/?project={furnished['empty']}")
        page.wait_for_selector("#onboarding-view:not([hidden])")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        phone.close()
        bad = {name: v for name, v in found.items() if v}
        assert bad == {}, "\n".join(f"{n}: {v}" for n, v in bad.items())


class TestKeyboard:
    def test_tabs_forms_and_destructive_buttons_work_from_the_keyboard(
            self, site: Site, furnished: dict[str, Any], browser: Any) -> None:
        """Tab reaches the page tabs and Enter opens one; a form is filled and sent with the
        keyboard alone; the two-step Revoke is confirmed with Enter; focus is visible."""
        context = new_context(browser)
        page = context.new_page()
        login(page, site.url, site.email)
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.dataset.page") == "keys":
                break
        else:
            pytest.fail("Tab never reached the API keys tab")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none")
        page.keyboard.press("Enter")
        page.wait_for_function("() => new URLSearchParams(location.search).get('view') === 'keys'")
        wait_loaded(page)
        assert query(page)["view"] == "keys"
        assert page.get_attribute("#tabs a[data-page='keys']", "aria-current") == "page"
        page.focus("#k-name")
        page.keyboard.press("Control+A")
        page.keyboard.type("from the keyboard")
        page.keyboard.press("Enter")  # submits the form
        page.wait_for_selector("#k-new:not([hidden])")
        assert page.evaluate("document.activeElement.id") == "k-secret"  # the key has the focus
        row = page.locator("#m-keys tbody tr", has_text="from the keyboard")
        revoke = row.locator("button", has_text="Revoke")
        revoke.focus()
        page.keyboard.press("Enter")
        page.keyboard.press("Enter")  # "Confirm revoke", same button, still focused
        page.wait_for_function("() => [...document.querySelectorAll('#m-keys tbody tr')].some("
                               "(r) => r.textContent.includes('from the keyboard') && "
                               "r.textContent.includes('revoked'))")
        context.close()
