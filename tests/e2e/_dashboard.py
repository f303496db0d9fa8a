"""What the dashboard's browser tests share: Debian's Chromium under Playwright, a watch on
CSP violations and foreign requests, signing in, screenshots and the axe-core check.

Screenshots for docs/screenshots/ are written only when ``LLMLAB_SCREENSHOTS=1`` (so a test
run leaves the tree clean); regenerate them with
``LLMLAB_SCREENSHOTS=1 .venv/bin/pytest tests/e2e/test_dashboard_*.py``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from webhook_receiver import Receiver

from .conftest import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery"
#: axe-core impacts that fail the accessibility check.
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright; a missing browser is a failure, not a skip."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: the dashboard browser test needs it. "
                    "Install it with `apt-get install -y chromium` (CI: .ci/run).", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `pip install playwright` (never `playwright install`).",
                    pytrace=False)
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                     headless=True, timeout=30_000)
        yield instance
        instance.close()


class Watch:
    """What the page did that it must not: CSP violations, script errors, foreign requests."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda msg: self.errors.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text else None)
        page.on("request", lambda req: self.foreign.append(req.url)
                if not req.url.startswith((origin, "blob:", "data:")) else None)
        page.add_init_script("window.__csp = []; document.addEventListener("
                             "'securitypolicyviolation', (e) => window.__csp.push(["
                             "e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber]"
                             ".join(' ')));")

    def assert_clean(self) -> None:
        """No CSP violation, no uncaught error, nothing loaded from another origin."""
        assert self.page.evaluate("window.__csp") == []
        assert self.errors == []
        assert self.foreign == []


def wait_loaded(page: Any) -> None:
    """Until no panel is loading."""
    # Functions, not expressions: Playwright evals expressions in the page, which the CSP forbids.
    page.wait_for_function("() => document.body.dataset.loading === 'false'", timeout=20_000)


def login(page: Any, url: str, email: str, path: str = "/") -> None:
    """Open ``path`` and sign in through the page's form."""
    page.goto(url + path)
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#app-view:not([hidden])")
    wait_loaded(page)


def query(page: Any) -> dict[str, str]:
    """The page's query string as a dict (the view's state)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def new_context(browser: Any, **options: Any) -> Any:
    """A browser context at 1366x900 unless told otherwise."""
    options.setdefault("viewport", {"width": 1366, "height": 900})
    return browser.new_context(**options)


def shot(page: Any, name: str, full_page: bool = True) -> None:
    """Save docs/screenshots/<name>.png when LLMLAB_SCREENSHOTS=1 (else nothing is written)."""
    if os.environ.get("LLMLAB_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def axe_violations(page: Any) -> list[str]:
    """Serious and critical axe-core violations of the page as shown (WCAG 2.1 A/AA + best
    practice), one line each: rule, impact, the first offending elements."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in BLOCKING:
            targets = [" ".join(map(str, n["target"])) for n in violation["nodes"][:3]]
            found.append(f"{violation['id']} ({violation['impact']}): {targets}")
    return found


@dataclass
class Site:
    """A live server, a receiver, and an owner with one project that has a few events."""

    url: str
    email: str
    token: str
    project: dict[str, Any]
    receiver: Receiver
    server: LiveServer

    def mailed_token(self, email: str) -> str:
        """The token of the verification mail the server sent ``email`` (its log mailer)."""
        outbox = self.server.app.extensions["llmlab_mailer"].outbox
        mail = next(m for m in reversed(outbox) if m.to == email and m.subject.startswith("Verify"))
        return str(next(line.removeprefix("token: ") for line in mail.body.splitlines()
                        if line.startswith("token: ")))

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            response = http.request(method, path, headers={
                "Authorization": f"Bearer {token or self.token}"}, **kwargs)
        return response


def signup(url: str) -> tuple[str, str]:
    """A new account's email and access token."""
    email = f"manage-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=url, timeout=30) as http:
        session = http.post("/api/auth/signup", json={"email": email, "password": PASSWORD}).json()
    return email, session["data"]["access_token"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A live server (webhooks may reach loopback) and a project with ten events."""
    server = LiveServer(f"sqlite:///{tmp_path_factory.mktemp('manage') / 'llmlab.db'}")
    server.app.config["WEBHOOK_ALLOW_PRIVATE"] = True  # the receiver is on 127.0.0.1
    server.start()
    receiver = Receiver()
    try:
        email, token = signup(server.url)
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, timeout=30) as http:
            project = http.post("/api/projects", headers=auth, json={
                "name": "Support bot", "slug": "support-bot"}).json()["data"]
            now = datetime.now(UTC)
            events = [{"schema_version": 1, "id": str(uuid.uuid4()), "provider": "openai",
                       "model": "gpt-4o", "operation": "chat.completions",
                       "timestamp": (now - timedelta(minutes=n)).isoformat(),
                       "usage": {"input_tokens": 20_000, "output_tokens": 2_000},
                       "status": "ok", "job_id": "ticket-triage"} for n in range(1, 11)]
            stored = http.post(f"/api/events/track?project={project['id']}", headers=auth,
                               json={"events": events})
            assert stored.json()["data"]["accepted"] == 10
        yield Site(server.url, email, token, project, receiver, server)
    finally:
        receiver.close()
        server.stop()
