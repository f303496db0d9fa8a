"""Creating an account and resetting a forgotten password from the dashboard's sign-in page,
in Chromium against a live server: the server's field errors are shown beside their field,
a new account lands on the projects page (its first project), and a reset token taken from
the server's test mailer sets a new password and signs in. The reset request answers the
same whether or not the address has an account."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from ._dashboard import PASSWORD, Site, Watch, new_context, shot, signup, wait_loaded
from ._dashboard import browser as browser  # the fixture, re-exported
from ._dashboard import site as site  # the fixture, re-exported

NEW_PASSWORD = "a brand new passphrase"


def _mailed(site: Site, email: str, subject: str, after: int = 0) -> str:
    """The token of the first mail to ``email`` whose subject starts with ``subject``, among
    the outbox's mails from index ``after`` on (waiting a little: mail is sent on a thread)."""
    outbox = site.server.app.extensions["llmlab_mailer"].outbox
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for mail in list(outbox)[after:]:
            if mail.to == email and mail.subject.startswith(subject):
                return str(next(line.removeprefix("token: ") for line in mail.body.splitlines()
                                if line.startswith("token: ")))
        time.sleep(0.05)
    raise AssertionError(f"no {subject!r} mail to {email}")


def _login_status(site: Site, email: str, password: str) -> int:
    with httpx.Client(base_url=site.url, timeout=30) as http:
        return http.post("/api/auth/login", json={"email": email, "password": password}).status_code


class TestSignup:
    def test_a_new_account_is_created_in_the_page_and_lands_on_its_first_project(
            self, site: Site, browser: Any) -> None:
        """A weak password shows the server's message under the Password field and creates
        nothing; a good one signs the new user in on the projects page with its welcome."""
        context = new_context(browser)
        page = context.new_page()
        watch = Watch(page, site.url)
        page.goto(site.url + "/")
        page.wait_for_selector("#login-view:not([hidden])")
        page.click("#to-signup")
        page.wait_for_selector("#signup-form:not([hidden])")
        assert page.is_hidden("#login-form")
        email = f"new-{uuid.uuid4().hex[:8]}@example.com"
        page.fill("#su-name", "Ada Lovelace")
        page.fill("#su-email", email)
        page.fill("#su-password", "password1234")  # 12 characters, but a common password
        page.click("#su-submit")
        page.wait_for_selector("#su-password-error:has-text('most common passwords')")
        assert page.get_attribute("#su-password", "aria-invalid") == "true"
        assert page.evaluate("() => document.activeElement.id") == "su-password"
        assert page.is_hidden("#app-view")
        assert _login_status(site, email, "password1234") == 401  # no account was made
        page.fill("#su-password", "short")  # under 10 characters: the length rule
        page.click("#su-submit")
        page.wait_for_selector("#su-password-error:has-text('at least 10 characters')")
        shot(page, "dashboard-signup-error", full_page=False)

        page.fill("#su-password", PASSWORD)
        page.click("#su-submit")
        page.wait_for_selector("#app-view:not([hidden])")
        wait_loaded(page)
        page.wait_for_selector("#projects-view:not([hidden])")
        assert "view=projects" in page.url
        assert page.text_content("#who") == email
        assert "Create your first project" in page.text_content("#notice")
        assert page.get_attribute("#su-password", "aria-invalid") is None
        assert page.input_value("#su-password") == ""  # no password left in the DOM
        me = httpx.get(site.url + "/api/auth/me", timeout=30, headers={
            "Authorization": "Bearer " + page.evaluate(
                "() => sessionStorage.getItem('llmlab.access')")}).json()["data"]
        assert me["user"]["email"] == email and me["user"]["name"] == "Ada Lovelace"
        assert me["user"]["email_verified"] is False  # signup mailed a verification token
        assert _mailed(site, email, "Verify")
        # The same address again: the server's 409 beside the Email field.
        page.click("#logout")
        page.wait_for_selector("#login-view:not([hidden])")
        assert page.is_visible("#login-form")  # signed out: the sign-in panel, not the sign-up
        page.click("#to-signup")
        page.fill("#su-email", email)
        page.fill("#su-password", PASSWORD)
        page.click("#su-submit")
        page.wait_for_selector("#su-email-error:has-text('exists already')")
        watch.assert_clean()
        context.close()


class TestPasswordReset:
    def test_forgot_password_then_token_then_new_password_signs_in(
            self, site: Site, browser: Any) -> None:
        """The request answers the same for an unknown address and a real one; the mailed
        token and a new password sign the user in; a wrong token is shown beside its field."""
        email, token = signup(site.url)
        verified = site.api("POST", "/api/auth/verify-email", token=token,
                            json={"token": site.mailed_token(email)})
        assert verified.status_code == 200
        context = new_context(browser)
        page = context.new_page()
        watch = Watch(page, site.url)
        page.goto(site.url + "/")
        page.wait_for_selector("#login-view:not([hidden])")
        page.click("#to-reset")
        page.wait_for_selector("#reset-view:not([hidden])")

        outbox = site.server.app.extensions["llmlab_mailer"].outbox
        page.fill("#rs-email", f"nobody-{uuid.uuid4().hex[:8]}@example.com")
        page.click("#rs-request")
        page.wait_for_selector("#rs-sent:has-text('reset token is on its way')")
        unknown_answer = page.text_content("#rs-sent")
        before = len(outbox)
        page.fill("#rs-email", email)
        page.click("#rs-request")
        page.wait_for_function("() => document.getElementById('rs-sent').textContent !== ''")
        assert page.text_content("#rs-sent") == unknown_answer  # no hint that the account exists
        assert page.evaluate("() => document.activeElement.id") == "rs-token"
        reset = _mailed(site, email, "Reset", before)

        page.fill("#rs-token", "not-a-token")
        page.fill("#rs-password", NEW_PASSWORD)
        page.click("#rs-submit")
        page.wait_for_selector("#rs-token-error:has-text('invalid')")
        page.fill("#rs-token", reset)
        page.fill("#rs-password", "short")
        page.click("#rs-submit")
        page.wait_for_selector("#rs-password-error:has-text('at least 10 characters')")
        assert page.get_attribute("#rs-token", "aria-invalid") is None
        shot(page, "dashboard-password-reset", full_page=False)
        page.fill("#rs-password", NEW_PASSWORD)
        page.click("#rs-submit")
        page.wait_for_selector("#app-view:not([hidden])")
        wait_loaded(page)
        assert page.text_content("#who") == email
        page.wait_for_selector("#projects-view:not([hidden])")  # no project yet
        assert _login_status(site, email, PASSWORD) == 401
        assert _login_status(site, email, NEW_PASSWORD) == 200
        assert page.input_value("#rs-token") == "" and page.input_value("#rs-password") == ""
        watch.assert_clean()
        context.close()

    def test_every_control_is_reachable_and_usable_from_the_keyboard(
            self, site: Site, browser: Any) -> None:
        """Tab reaches "Forgot password?" from the sign-in form, Enter opens it, and the
        request form is filled and sent with the keyboard alone."""
        context = new_context(browser)
        page = context.new_page()
        page.goto(site.url + "/")
        page.wait_for_selector("#login-view:not([hidden])")
        page.focus("#email")
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.id") == "to-reset":
                break
        else:
            raise AssertionError("Tab never reached Forgot password?")
        page.keyboard.press("Enter")
        page.wait_for_selector("#reset-view:not([hidden])")
        assert page.evaluate("() => document.activeElement.id") == "rs-email"
        page.keyboard.type("someone@example.com")
        page.keyboard.press("Enter")
        page.wait_for_selector("#rs-sent:has-text('reset token is on its way')")
        context.close()
