"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright.

A real server (werkzeug, SQLite) gets a user, two projects and a few hundred realistic events
over the last two weeks (one of them carrying every optional field); the tests log in through
the page and prove each flow a person uses: charts drawn with that data, switching project,
following a recommendation, exporting CSV, drilling from the overview to a job and one of its
events, a custom date range kept by the URL across a reload and the back button, dark mode,
the phone layout, and a failed panel's Retry. Screenshots go to ``docs/screenshots/``. Every
test also proves the page runs under its CSP ('self' only) without a single violation and
loads nothing from another origin. Without Chromium the test FAILS (CI installs
it: ``apt-get install chromium``); browsers are never downloaded (no ``playwright install``).
"""

from __future__ import annotations

import csv
import io
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
#: One event with every optional field set: the event detail must show each of them.
RICH_ID = "0000-rich-event"
RICH_JOB = "ticket-triage"
#: The one money format: cents, or two significant digits under a cent ("$0.0048").
MONEY = re.compile(r"^-?\$(?:\d{1,3}(?:,\d{3})*\.\d{2}|0\.00\d*[1-9]\d)$")


@dataclass
class World:
    """The seeded server: its URL, the user's credentials and the two projects."""

    url: str
    email: str
    token: str
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


def _rich_event() -> dict[str, Any]:
    """A failed, estimated streaming call with cache tokens, TTFB, tier and an alias requested."""
    at = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "schema_version": 1, "id": RICH_ID,
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "provider": "openai", "model": "gpt-4o", "requested_model": "gpt-4o-latest",
        "operation": "chat.completions",
        "usage": {"input_tokens": 5000, "output_tokens": 120, "cache_read_tokens": 4096,
                  "cache_write_tokens": 0, "reasoning_tokens": 0},
        "latency_ms": 2310.5, "ttfb_ms": 412.25, "stream": True, "estimated": True,
        "status": "error", "error_type": "APITimeoutError", "service_tier": "default",
        "project": "support-bot", "job_id": RICH_JOB, "user_id": "cust-42",
        "function": "app.triage", "tags": {"feature": "triage", "env": "prod"},
        "environment": "staging",
    }


def _seed(url: str) -> World:
    """A user, two projects, an ingest key; ~460 events through the HTTP API; one budget."""
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
        response = http.post("/api/events/track", json=_rich_event(),
                             headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 207 and response.json()["data"]["accepted"] == 1
        # The second project is fed by the user's own token (member+ may ingest with ?project=).
        response = http.post(f"/api/events/track?project={other['id']}", headers=auth,
                             json={"events": _events(OTHER_MODELS, 60, "research-agent", 2)})
        assert response.status_code == 207 and response.json()["data"]["accepted"] == 60
        budget = http.post("/api/budgets", headers=auth, json={
            "project_id": main["id"], "name": "Monthly cap", "amount": "25", "period": "monthly",
            "thresholds": [50, 80, 100]})
        recs = http.get("/api/recommendations", headers=auth, params={"project": main["id"]})
    return World(url, email, session["data"]["access_token"], main, other,
                 budget.status_code == 201, recs.status_code == 200)


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


def _login(page: Any, world: World, path: str = "/") -> None:
    page.goto(world.url + path)
    page.fill("#email", world.email)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#app-view:not([hidden])")
    _wait_loaded(page)


def _trace_values(page: Any, chart: str, axis: str) -> list[Any]:
    return list(page.evaluate(f"document.getElementById('{chart}').data[0].{axis}"))


def _query(page: Any) -> dict[str, str]:
    """The page's query string as a dict (the view's state)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def _money_texts(page: Any) -> list[str]:
    """Every dollar amount written on the page's visible panels."""
    texts = page.locator("main :is(.big, .sub, td, .rec-saving, .rec-foot, .budget-head, "
                         ".budget-foot, dd)").all_text_contents()
    return [m for t in texts for m in re.findall(r"-?\$[\d,.]*\d", t)]


def _api(world: World, path: str, **params: Any) -> Any:
    with httpx.Client(base_url=world.url, timeout=30) as http:
        response = http.get(path, params=params,
                            headers={"Authorization": f"Bearer {world.token}"})
        assert response.status_code == 200, response.text
        return response.json()["data"]


def _context(browser: Any, **options: Any) -> Any:
    options.setdefault("viewport", {"width": 1366, "height": 900})
    return browser.new_context(**options)


class TestDashboardInBrowser:
    """The whole overview flow in headless Chromium against a live server."""

    def test_login_charts_switch_recommendation_export(self, world: World, browser: Any,
                                                        tmp_path: Path) -> None:
        """A user logs in, sees drawn charts of their data, switches project, follows a
        recommendation, exports CSV; the page stays within its CSP and its own origin."""
        context = _context(browser, timezone_id="Europe/Paris", accept_downloads=True)
        page = context.new_page()
        watch = Watch(page, world.url)
        _login(page, world)

        # The token lives in sessionStorage, never in the URL (which holds only the view).
        assert page.evaluate("sessionStorage.getItem('llmlab.access')")
        assert "token" not in page.url and _query(page) == {"project": str(world.main["id"])}

        # Cards, line chart and bars are drawn with the seeded data.
        assert page.text_content("#card-range").startswith("$")
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
        # One money format on every panel ("$0.0600" beside "$0.10" was the bug).
        amounts = _money_texts(page)
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
            card.locator("button").click()
            page.wait_for_function(
                "() => document.querySelector('#f-model').value !== '' && "
                "[...document.querySelectorAll('#events tbody tr')].every((r) => "
                "r.children[1] && r.children[1].textContent === document.querySelector('#f-model').value)",
                timeout=10_000)
            model = page.input_value("#f-model")
            assert _query(page)["f_model"] == model
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
        assert set(_trace_values(page, "chart-model", "y")) == {m[1] for m in OTHER_MODELS}
        assert set(_trace_values(page, "chart-provider", "y")) == {"anthropic", "mistral"}
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
        page.screenshot(path=str(SCREENSHOTS / "dashboard-project-switched.png"), full_page=True)

        # Reload keeps the session (sessionStorage) and the chosen project (the URL).
        page.reload()
        _wait_loaded(page)
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
        context = _context(browser)
        page = context.new_page()
        watch = Watch(page, world.url)
        _login(page, world)
        before = page.locator("#recommendations .rec-saving").all_text_contents()
        assert before and "last 30 days" in page.text_content("#rec-window")
        with page.expect_request(lambda r: "/api/recommendations" in r.url) as asked:
            page.select_option("#range", "7d")
        assert parse_qs(urlsplit(asked.value.url).query)["days"] == ["30"]
        _wait_loaded(page)
        assert _query(page)["range"] == "7d"
        assert page.locator("#recommendations .rec-saving").all_text_contents() == before
        watch.assert_clean()
        context.close()

    def test_cards_compare_with_the_previous_period(self, world: World, browser: Any) -> None:
        """With "Last 7 days" the cards show the change against the 7 days before, with the
        previous amounts the API gives for that period."""
        context = _context(browser)
        page = context.new_page()
        watch = Watch(page, world.url)
        _login(page, world, f"/?project={world.main['id']}&range=7d")
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        before = _api(world, "/api/costs/summary", project=world.main["id"],
                      start=(start - (end - start)).isoformat(), end=start.isoformat())["totals"]
        calls = int(before["calls"])
        assert calls > 0  # the seed spans two weeks
        sub = page.text_content("#card-calls-sub")
        assert re.search("[+\u2212\u00b1][0-9.]+%", sub) and f"vs {calls:,} before" in sub
        assert "compared with" in page.text_content("#range-compare")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard-overview.png"), full_page=True)
        watch.assert_clean()
        context.close()

    def test_thin_month_forecast_is_marked_uncertain(self, world: World, browser: Any) -> None:
        """On the 2nd of a month (a day and a half of data) the month-end forecast says it is
        uncertain; later in the month it is a plain run-rate figure."""
        now = datetime.now(UTC)
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        early = min(now, month + timedelta(hours=36))
        context = _context(browser)
        page = context.new_page()
        page.clock.install(time=early)
        _login(page, world)
        card = page.locator("#card-forecast").locator("..")
        assert "uncertain" in (card.get_attribute("class") or "")
        assert page.text_content("#card-forecast").startswith("≈ $")
        assert "uncertain" in page.text_content("#card-forecast-sub")
        context.close()
        if now - month >= timedelta(days=3):
            context = _context(browser)
            page = context.new_page()
            _login(page, world)
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


class TestNavigation:
    """The view lives in the URL: drill-down, event detail, ranges, reload and back."""

    def test_drill_from_overview_to_a_job_and_one_of_its_events(self, world: World,
                                                                 browser: Any) -> None:
        """Clicking a job opens its detail (cards, cost over time, only its events); clicking
        an event shows every stored field; reload shows the same event; back returns to the
        job, then to the overview; a model bar opens the model's detail."""
        context = _context(browser)
        page = context.new_page()
        watch = Watch(page, world.url)
        _login(page, world)

        page.locator("#top-job a", has_text=RICH_JOB).click()
        _wait_loaded(page)
        assert _query(page) == {"project": str(world.main["id"]), "view": "job", "key": RICH_JOB}
        assert page.locator("#detail-view").is_visible() and page.locator("#overview-view").is_hidden()
        assert page.text_content("#detail-key") == RICH_JOB
        row = _api(world, "/api/costs/summary", project=world.main["id"], group_by="job",
                   start=(datetime.now(UTC) - timedelta(days=29)).date().isoformat())
        mine = next(g for g in row["groups"] if g["key"] == RICH_JOB)
        assert page.text_content("#d-calls") == f"{mine['calls']:,}"
        assert page.text_content("#d-cache").endswith("%")
        assert page.locator("#d-chart .barlayer .point").count() >= 10
        assert sum(_trace_values(page, "d-chart", "customdata")) == mine["calls"]
        jobs = page.locator("#d-events tbody tr td:nth-child(4)").all_text_contents()
        assert len(jobs) == 25 and set(jobs) == {RICH_JOB}
        page.screenshot(path=str(SCREENSHOTS / "dashboard-job-detail.png"), full_page=True)

        # The newest event of the job is the seeded one with every field.
        page.locator(f"#d-events tr[data-event-id='{RICH_ID}']").click()
        _wait_loaded(page)
        assert _query(page)["view"] == "event" and _query(page)["event"] == RICH_ID
        fields = page.text_content("#event-fields")
        for expected in ("APITimeoutError", "gpt-4o-latest", "default", "staging", "412 ms",
                         "2,311 ms", "4,096", "cache read tokens", "yes (stream ended early",
                         "feature", "triage", "app.triage", "cust-42"):
            assert expected in fields, expected
        assert "Job ticket-triage" in page.text_content("#event-crumbs")
        page.screenshot(path=str(SCREENSHOTS / "dashboard-event-detail.png"), full_page=True)

        page.reload()  # a fresh page finds the event by its id and time
        _wait_loaded(page)
        assert page.text_content("#event-id") == RICH_ID
        assert "APITimeoutError" in page.text_content("#event-fields")

        page.go_back()
        _wait_loaded(page)
        assert page.locator("#detail-view").is_visible() and _query(page)["key"] == RICH_JOB
        page.go_back()
        _wait_loaded(page)
        assert page.locator("#overview-view").is_visible() and "view" not in _query(page)

        # A bar of the model chart opens that model.
        # plotly listens on its drag layer above the bars: click where the bar is drawn.
        page.locator("#chart-model .barlayer .point path").last.click(force=True)
        page.wait_for_function("() => new URLSearchParams(location.search).get('view') === 'model'")
        _wait_loaded(page)
        model = _query(page)["key"]
        assert model in {m[1] for m in MAIN_MODELS}
        models = page.locator("#d-events tbody tr td:nth-child(2)").all_text_contents()
        assert models and set(models) == {model}
        watch.assert_clean()
        context.close()

    def test_custom_range_survives_reload_and_back(self, world: World, browser: Any) -> None:
        """A custom range (six days, both ends included) goes into the URL; the chart, cards and events
        cover exactly those days; a reload of that URL shows the same view; back undoes it."""
        context = _context(browser)
        page = context.new_page()
        watch = Watch(page, world.url)
        _login(page, world)
        today = datetime.now(UTC).date()
        first, last = today - timedelta(days=9), today - timedelta(days=4)
        page.select_option("#range", "custom")
        page.fill("#from", last.isoformat())  # backwards: refused on the page
        page.fill("#to", first.isoformat())
        page.click("#apply-range")
        assert page.text_content("#notice") == "The last day is before the first."
        assert "range" not in _query(page)
        page.fill("#from", first.isoformat())
        page.fill("#to", last.isoformat())
        page.click("#apply-range")
        page.wait_for_function("() => new URLSearchParams(location.search).get('range') === 'custom'")
        _wait_loaded(page)
        assert _query(page) == {"project": str(world.main["id"]), "range": "custom",
                                "from": first.isoformat(), "to": last.isoformat()}
        days = [first + timedelta(days=n) for n in range(6)]
        assert _trace_values(page, "chart-timeseries", "x") == [d.isoformat() for d in days]
        assert page.locator("#chart-timeseries .scatterlayer .point").count() == 6
        spend = _api(world, "/api/costs/summary", project=world.main["id"], start=first.isoformat(),
                     end=(last + timedelta(days=1)).isoformat())["totals"]
        assert page.text_content("#card-calls") == f"{spend['calls']:,}"
        times = page.locator("#events tbody tr td:nth-child(1)").all_text_contents()
        assert times and all(first.isoformat() <= t[:10] <= last.isoformat() for t in times)
        view = (page.text_content("#card-range"), page.text_content("#range-label"),
                _trace_values(page, "chart-timeseries", "y"))

        page.reload()
        _wait_loaded(page)
        assert page.input_value("#range") == "custom"
        assert page.input_value("#from") == first.isoformat() and page.input_value("#to") == last.isoformat()
        assert (page.text_content("#card-range"), page.text_content("#range-label"),
                _trace_values(page, "chart-timeseries", "y")) == view
        assert "(UTC)" in view[1]

        page.go_back()
        _wait_loaded(page)
        assert page.input_value("#range") == "30d" and "range" not in _query(page)
        watch.assert_clean()
        context.close()

    def test_a_shared_link_opens_the_same_view(self, world: World, browser: Any) -> None:
        """Opening a URL with a grouping, tag key and filters (as a colleague would) signs in
        and then shows that exact view."""
        context = _context(browser)
        page = context.new_page()
        _login(page, world, f"/?project={world.main['id']}&range=7d&by=hour&tag=env&f_status=error")
        assert page.input_value("#range") == "7d" and page.input_value("#interval") == "hour"
        assert page.input_value("#tag-key") == "env" and page.input_value("#f-status") == "error"
        statuses = page.locator("#events tbody tr td:nth-child(9)").all_text_contents()
        assert statuses and set(statuses) == {"error"}
        assert len(_trace_values(page, "chart-timeseries", "x")) > 7 * 24 - 24
        context.close()


class TestLayout:
    """Dark mode, the phone layout, and failures a person can retry."""

    def test_dark_mode_follows_the_system_and_the_toggle(self, world: World, browser: Any) -> None:
        """A system in dark mode gets the dark page; the theme picker forces light or dark,
        the charts follow, and the choice outlives a reload."""
        context = _context(browser, color_scheme="dark")
        page = context.new_page()
        watch = Watch(page, world.url)
        _login(page, world)
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
        _wait_loaded(page)
        assert page.input_value("#theme") == "dark"
        assert page.evaluate(background) == "rgb(16, 20, 27)"
        page.screenshot(path=str(SCREENSHOTS / "dashboard-dark.png"), full_page=False)
        watch.assert_clean()
        context.close()

    def test_phone_layout_keeps_the_cost_column_visible(self, world: World, browser: Any) -> None:
        """At 390x844 nothing overflows the screen sideways; the events table scrolls in its
        own box with the Cost column pinned in view, before and after scrolling it."""
        context = _context(browser, viewport={"width": 390, "height": 844}, is_mobile=True,
                           has_touch=True, device_scale_factor=2)
        page = context.new_page()
        watch = Watch(page, world.url)
        _login(page, world)
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
        page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=False)
        page.evaluate("document.getElementById('events-panel').scrollIntoView()")
        page.screenshot(path=str(SCREENSHOTS / "dashboard-phone-events.png"), full_page=False)
        watch.assert_clean()
        context.close()

    def test_loading_placeholder_then_failure_with_retry(self, world: World, browser: Any) -> None:
        """While the time series is on its way its panel shows a busy placeholder; when the
        request fails the panel says so with a Retry button, and Retry draws the chart once
        the server answers again."""
        context = _context(browser)
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
        _wait_loaded(page)
        panel = page.locator("#chart-timeseries")
        assert "Could not load: try again later" in panel.text_content()
        panel.locator("button.retry").click()
        page.wait_for_selector("#chart-timeseries .scatterlayer .trace")
        assert sum(1 for c in _trace_values(page, "chart-timeseries", "y") if c > 0) >= 10
        context.close()
