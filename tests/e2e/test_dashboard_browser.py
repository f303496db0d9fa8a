"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright.

A real server (werkzeug, SQLite) gets a user, two projects and a few hundred realistic events
over the last two weeks; the test logs in through the page, checks the charts are drawn with
that data, switches project, follows a recommendation, exports CSV and saves screenshots to
``docs/screenshots/``. It also proves the page runs under its CSP ('self' only) without a single
violation and loads nothing from another origin. Without Chromium the test FAILS (CI installs
it: ``apt-get install chromium``); browsers are never downloaded (no ``playwright install``).
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery"
#: (provider, model, input tokens range, output tokens range, weight)
MAIN_MODELS = [("openai", "gpt-4o", (1500, 6000), (200, 700), 5),
               ("openai", "gpt-4o-mini", (400, 2000), (50, 300), 6),
               ("anthropic", "claude-sonnet-4-5", (2000, 8000), (300, 900), 3),
               ("google", "gemini-2.5-flash", (500, 3000), (100, 500), 2)]
OTHER_MODELS = [("anthropic", "claude-haiku-4-5", (800, 3000), (100, 400), 3),
                ("mistral", "mistral-large-latest", (600, 2500), (100, 400), 1)]
JOBS = ["ticket-triage", "nightly-digest", "kb-answer", "summarise-thread"]
USERS = ["cust-42", "cust-7", "cust-1093", "ops-bot", None]
FEATURES = ["triage", "search", "digest"]


@dataclass
class World:
    """The seeded server: its URL, the user's credentials and the two projects."""

    url: str
    email: str
    main: dict[str, Any]
    other: dict[str, Any]
    budgets: bool
    recommendations: bool


def _events(models: list[Any], count: int, slug: str, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out = []
    weights = [m[4] for m in models]
    for n in range(count):
        provider, model, (i_lo, i_hi), (o_lo, o_hi), _ = rng.choices(models, weights)[0]
        # Every day of the last two weeks, and a few minutes ago (so "today" has spend).
        age = timedelta(minutes=rng.randint(5, 60)) if n % 10 == 0 else timedelta(
            days=rng.randint(0, 13), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
        status = "error" if rng.random() < 0.06 else "ok"
        out.append({
            "schema_version": 1, "id": str(uuid.uuid4()),
            "timestamp": (now - age).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "provider": provider, "model": model, "operation": "chat.completions",
            "usage": {"input_tokens": rng.randint(i_lo, i_hi), "output_tokens": rng.randint(o_lo, o_hi)},
            "latency_ms": round(rng.uniform(250, 4000), 1), "stream": rng.random() < 0.3,
            "status": status, "error_type": "RateLimitError" if status == "error" else None,
            "project": slug, "job_id": rng.choice(JOBS), "user_id": rng.choice(USERS),
            "function": "app.answer", "tags": {"feature": rng.choice(FEATURES), "env": "prod"},
            "environment": "prod",
        })
    return out


def _seed(url: str) -> World:
    """A user, two projects, an ingest key; ~450 events through the HTTP API; one budget."""
    email = f"dash-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=url, timeout=30) as http:
        session = http.post("/api/auth/signup", json={"email": email, "password": PASSWORD}).json()
        auth = {"Authorization": f"Bearer {session['data']['access_token']}"}
        main = http.post("/api/projects", headers=auth,
                         json={"name": "Support bot", "slug": "support-bot"}).json()["data"]
        other = http.post("/api/projects", headers=auth,
                          json={"name": "Research agent", "slug": "research-agent"}).json()["data"]
        key = http.post("/api/keys", headers=auth, json={
            "project_id": main["id"], "name": "ingest", "scopes": ["ingest"]}).json()["data"]["key"]
        main_events = _events(MAIN_MODELS, 400, "support-bot", 1)
        for i in range(0, len(main_events), 200):
            response = http.post("/api/events/track", json={"events": main_events[i:i + 200]},
                                 headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 207 and response.json()["data"]["accepted"] == 200
        # The second project is fed by the user's own token (member+ may ingest with ?project=).
        response = http.post(f"/api/events/track?project={other['id']}", headers=auth,
                             json={"events": _events(OTHER_MODELS, 60, "research-agent", 2)})
        assert response.status_code == 207 and response.json()["data"]["accepted"] == 60
        budget = http.post("/api/budgets", headers=auth, json={
            "project_id": main["id"], "name": "Monthly cap", "amount": "25", "period": "monthly",
            "thresholds": [50, 80, 100]})
        recs = http.get("/api/recommendations", headers=auth, params={"project": main["id"]})
    return World(url, email, main, other, budget.status_code == 201, recs.status_code == 200)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A live server with the seeded data (shared by the tests of this module)."""
    server = LiveServer(f"sqlite:///{tmp_path_factory.mktemp('dash') / 'llmlab.db'}").start()
    try:
        yield _seed(server.url)
    finally:
        server.stop()


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


def _wait_loaded(page: Any) -> None:
    # Functions, not expressions: Playwright evals expressions in the page, which the CSP forbids.
    page.wait_for_function("() => document.body.dataset.loading === 'false'", timeout=20_000)


def _login(page: Any, world: World) -> None:
    page.goto(world.url + "/")
    page.fill("#email", world.email)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#app-view:not([hidden])")
    _wait_loaded(page)


def _trace_values(page: Any, chart: str, axis: str) -> list[Any]:
    return list(page.evaluate(f"document.getElementById('{chart}').data[0].{axis}"))


class TestDashboardInBrowser:
    """The whole dashboard flow in headless Chromium against a live server."""

    def test_login_charts_switch_recommendation_export(self, world: World, browser: Any,
                                                        tmp_path: Path) -> None:
        """A user logs in, sees drawn charts of their data, switches project, follows a
        recommendation, exports CSV; the page stays within its CSP and its own origin."""
        context = browser.new_context(viewport={"width": 1366, "height": 900},
                                      timezone_id="Europe/Paris", accept_downloads=True)
        page = context.new_page()
        watch = Watch(page, world.url)
        _login(page, world)

        # The token lives in sessionStorage, never in the URL.
        assert page.evaluate("sessionStorage.getItem('llmlab.access')")
        assert "token" not in page.url and page.url.rstrip("/") == world.url

        # Cards, line chart and bars are drawn with the seeded data.
        assert page.text_content("#card-today").startswith("$")
        assert page.text_content("#card-month") != "—"
        assert page.locator("#chart-timeseries .main-svg").count() >= 1
        assert page.locator("#chart-timeseries .scatterlayer .trace").count() == 1
        costs = _trace_values(page, "chart-timeseries", "y")
        assert sum(1 for c in costs if c > 0) >= 10  # two weeks of daily spend
        models = set(_trace_values(page, "chart-model", "y"))
        assert models == {m[1] for m in MAIN_MODELS}
        assert page.locator("#chart-model .barlayer .point").count() == len(MAIN_MODELS)
        assert set(_trace_values(page, "chart-provider", "y")) == {"openai", "anthropic", "google"}
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
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard-overview.png"), full_page=True)

        # Export: a CSV download of the range, fetched with the bearer header.
        with page.expect_download() as download_info:
            page.click("#export")
        download = download_info.value
        assert download.suggested_filename.startswith("llmlab-costs-")
        target = tmp_path / "export.csv"
        download.save_as(target)
        rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
        assert len(rows) == 400 + 1  # header + every event of the 30-day range

        # "Load more" appends the next page (cursor pagination of /api/events).
        page.click("#more")
        page.wait_for_function("() => document.querySelectorAll('#events tbody tr').length === 50")

        # Follow a recommendation: its evidence becomes the event filter.
        if world.recommendations:
            cards = page.locator("#recommendations .rec")
            assert cards.count() >= 1
            assert "/mo" in cards.first.locator(".rec-saving").text_content()
            failed = page.locator("#recommendations .rec[data-kind='failed_calls']")
            card = failed.first if failed.count() else cards.first
            card.locator("button").click()
            page.wait_for_function(
                "() => document.querySelector('#f-model').value !== '' && "
                "[...document.querySelectorAll('#events tbody tr')].every((r) => "
                "r.children[2] && r.children[2].textContent === document.querySelector('#f-model').value)",
                timeout=10_000)
            model = page.input_value("#f-model")
            cells = page.locator("#events tbody tr td:nth-child(3)").all_text_contents()
            assert cells and set(cells) == {model}
            if failed.count():
                statuses = page.locator("#events tbody tr td:nth-child(10)").all_text_contents()
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
        assert set(_trace_values(page, "chart-model", "y")) == {m[1] for m in OTHER_MODELS}
        assert set(_trace_values(page, "chart-provider", "y")) == {"anthropic", "mistral"}
        assert page.input_value("#f-model") == ""  # filters reset with the project
        assert page.locator("#events tbody tr").count() == 25
        if world.budgets:
            assert "No budgets yet" in page.text_content("#budgets")
        page.screenshot(path=str(SCREENSHOTS / "dashboard-project-switched.png"), full_page=True)

        # Reload keeps the session (sessionStorage) and the chosen project.
        page.reload()
        _wait_loaded(page)
        assert page.input_value("#project") == str(world.other["id"])

        page.click("#logout")
        page.wait_for_selector("#login-view:not([hidden])")
        assert page.evaluate("sessionStorage.getItem('llmlab.access')") is None
        watch.assert_clean()
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
        _login(page, world)
        page.evaluate("sessionStorage.setItem('llmlab.access', 'expired')")
        old_refresh = page.evaluate("sessionStorage.getItem('llmlab.refresh')")
        with page.expect_response(lambda r: r.url.endswith("/api/auth/refresh")) as refreshed:
            page.reload()
        assert refreshed.value.status == 200
        _wait_loaded(page)
        assert page.evaluate("sessionStorage.getItem('llmlab.access')") != "expired"
        assert page.evaluate("sessionStorage.getItem('llmlab.refresh')") != old_refresh
        assert page.locator("#chart-model .main-svg").count() >= 1
        context.close()
