"""The seeded world of the dashboard's browser tests: a live server (werkzeug, SQLite) with a
user, two projects and a few hundred realistic events over the last two weeks (one of them
carrying every optional field), and helpers that read the page and the API."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ._dashboard import PASSWORD, login
from .conftest import LiveServer

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


def sign_in(page: Any, world: World, path: str = "/") -> None:
    """Sign in to ``world`` through the page, at ``path``."""
    login(page, world.url, world.email, path)


def trace_values(page: Any, chart: str, axis: str) -> list[Any]:
    """The first trace's ``axis`` values of a plotly chart."""
    return list(page.evaluate(f"document.getElementById('{chart}').data[0].{axis}"))


def money_texts(page: Any) -> list[str]:
    """Every dollar amount written on the page's visible panels."""
    texts = page.locator("main :is(.big, .sub, td, .rec-saving, .rec-foot, .budget-head, "
                         ".budget-foot, dd)").all_text_contents()
    return [m for t in texts for m in re.findall(r"-?\$[\d,.]*\d", t)]


def api_get(world: World, path: str, **params: Any) -> Any:
    """``data`` of an authenticated GET as the seeded user."""
    with httpx.Client(base_url=world.url, timeout=30) as http:
        response = http.get(path, params=params,
                            headers={"Authorization": f"Bearer {world.token}"})
        assert response.status_code == 200, response.text
        return response.json()["data"]
