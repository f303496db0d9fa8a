"""The demo's month of history: its shape, its prices, and what the server makes of it."""

from __future__ import annotations

import io
import logging
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from rich.console import Console

import llmlab
from llmlab.client import Client
from llmlab.usage import Usage
from llmlab_server import demo
from llmlab_server.demo_history import ADOPTION_DAY, DAYS, History, backfill_project, generate
from llmlab_server.services.budgets import statuses
from llmlab_server.services.recommendations import recommend

from .helpers import Api

NOW = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)  # a Sunday afternoon
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Three run times: mid-afternoon on a Sunday, just after midnight on a Monday, a Thursday noon.
NOWS = (NOW, datetime(2026, 12, 14, 0, 20, tzinfo=UTC), datetime(2027, 2, 4, 12, 0, tzinfo=UTC))


@pytest.fixture(scope="module", params=NOWS, ids=lambda now: now.strftime("%a-%H%M"))
def history(request: pytest.FixtureRequest) -> History:
    """The history ``llmlab demo`` backfills when run at each of `NOWS`."""
    return generate(request.param)


def _when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def _full_days(history: History) -> dict[date, list[dict[str, Any]]]:
    """The events of each day before today (today is cut short by ``now``)."""
    days: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for event in history.events:
        days[_when(event).date()].append(event)
    days.pop(history.end.date(), None)
    return days


def _cost(events: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(e["cost"]["total"]) for e in events), Decimal(0))


class TestShape:
    """What the month looks like, whatever day the demo runs."""

    def test_it_covers_thirty_days_before_now(self, history: History) -> None:
        """The 29 days before today all have events, today's start at midnight, and all
        are in time order before ``now``."""
        times = [_when(e) for e in history.events]
        assert history.start == datetime.combine(
            history.end.date() - timedelta(days=DAYS - 1), datetime.min.time(), UTC)
        assert set(_full_days(history)) == {
            history.start.date() + timedelta(days=i) for i in range(DAYS - 1)}
        assert times == sorted(times) and times[0] >= history.start and times[-1] < history.end

    def test_weekdays_are_busier_than_weekends(self, history: History) -> None:
        """A weekday has on average more than twice the calls and more cost than a weekend day."""
        weekday: list[list[dict[str, Any]]] = []
        weekend: list[list[dict[str, Any]]] = []
        for day, events in _full_days(history).items():
            (weekday if day.weekday() < 5 else weekend).append(events)
        assert weekday and weekend
        assert statistics.mean(map(len, weekday)) > 2 * statistics.mean(map(len, weekend))
        assert statistics.mean(map(_cost, weekday)) > statistics.mean(map(_cost, weekend))

    def test_chat_peaks_in_business_hours(self, history: History) -> None:
        """Support chat makes over three times as many calls an hour at 09-17 as at 00-06."""
        per_hour = [0] * 24
        for event in history.events:
            if event["tags"]["feature"] == "support-chat":
                per_hour[_when(event).hour] += 1
        assert statistics.mean(per_hour[9:17]) > 3 * statistics.mean(per_hour[0:6])

    def test_one_day_spikes(self, history: History) -> None:
        """The runaway agent's day costs over four times the median day, mostly the agent."""
        days = _full_days(history)
        spike = days[history.start.date() + timedelta(days=history.spike_day)]
        median = statistics.median(map(_cost, days.values()))
        assert _cost(spike) > 4 * median
        agent = [e for e in spike if e.get("job_id") == "research-agent"]
        assert _cost(agent) * 2 > _cost(spike)
        assert max(days, key=lambda d: _cost(days[d])) == _when(spike[0]).date()

    def test_a_new_model_is_adopted_mid_month(self, history: History) -> None:
        """gpt-4o-mini appears only in the second half, as gpt-3.5-turbo's chats move to it."""
        def times(model: str) -> list[datetime]:
            return [_when(e) for e in history.events if e["model"] == model]

        half = history.start + timedelta(days=DAYS / 2)
        new, old = times("gpt-4o-mini"), times("gpt-3.5-turbo")
        assert new and old
        assert min(new) >= half and min(new) >= history.start + timedelta(days=ADOPTION_DAY)
        assert max(old) < history.start + timedelta(days=ADOPTION_DAY + 2)

    def test_it_looks_like_the_live_app(self, history: History) -> None:
        """Three providers, their models, the live app's features and jobs, errors and cache
        reads on triage, many customers."""
        events = history.events
        assert {e["provider"] for e in events} == {"openai", "anthropic", "google"}
        assert len({e["model"] for e in events}) >= 6
        assert {e["tags"]["feature"] for e in events} == {
            "support-chat", "triage", "summaries", "reports", "search", "agent"}
        assert {"nightly-report", "reindex-catalogue", "review-digest", "research-agent"} <= {
            e.get("job_id") for e in events}
        errors = [e for e in events if e["status"] == "error"]
        assert 0 < len(errors) < len(events) // 20 and all(e["error_type"] for e in errors)
        triage = [e for e in events if e["tags"]["feature"] == "triage"]
        reads = sum(e["usage"].get("cache_read_tokens", 0) for e in triage)
        assert reads > sum(e["usage"].get("input_tokens", 0) for e in triage) // 2
        assert len({e.get("user_id") for e in events}) > 30

    def test_ids_are_time_ordered_uuid7s(self, history: History) -> None:
        """Each id is a unique version-7 UUID whose time is the event's millisecond."""
        ids = [e["id"] for e in history.events]
        assert len(set(ids)) == len(ids)
        for event in history.events[:: max(1, len(ids) // 500)]:
            parsed = uuid.UUID(event["id"])
            assert parsed.version == 7
            assert parsed.int >> 80 == (_when(event) - EPOCH) // timedelta(milliseconds=1)


class TestPricesAndSeed:
    """Costs come from the engine; a seed gives one history."""

    def test_total_is_the_engine_sum(self, history: History) -> None:
        """The total is exactly the sum of `llmlab.cost` of every event's usage at its time."""
        engine = [llmlab.cost(e["model"], Usage(**e["usage"]), e["provider"], at=e["timestamp"])
                  for e in history.events]
        assert all(b.priced for b in engine)
        assert sum((b.total for b in engine), Decimal(0)) == history.total
        assert [b.total for b in engine] == [Decimal(e["cost"]["total"]) for e in history.events]

    def test_same_seed_same_history(self) -> None:
        """Two runs with the same seed and time give the same events, ids and total."""
        first, second = generate(NOW, seed=11), generate(NOW, seed=11)
        assert first.events == second.events and first.total == second.total

    def test_a_later_now_only_adds_calls(self) -> None:
        """Run six hours later the same day, the demo has the same calls up to the earlier
        time, and more after it."""
        earlier, later = generate(NOW - timedelta(hours=6)), generate(NOW)
        assert len(later.events) > len(earlier.events)
        assert later.events[:len(earlier.events)] == earlier.events

    def test_another_seed_another_history(self) -> None:
        """Another seed at the same time gives other events (the seed decides them)."""
        assert generate(NOW, seed=12).total != generate(NOW, seed=11).total


class TestBackfill:
    """The history stored through the server's ingest (SQLite and PostgreSQL)."""

    def _project(self, api: Api) -> tuple[str, int]:
        token = api.user()
        return token, int(api.project(token, "Demo shop", "demo-shop")["id"])

    def test_rollups_and_events_agree_with_the_engine(self, app: Flask, api: Api) -> None:
        """Summaries (whole and by tag, both from rollups) and the daily trend, add up to the
        engine's total to the nano-dollar, with every call and day present."""
        token, pid = self._project(api)
        history = backfill_project(app, pid, now=NOW)
        end = NOW.replace(minute=0) + timedelta(hours=1)
        window = {"project": pid, "start": history.start.isoformat(), "end": end.isoformat()}
        whole = api.data("GET", "/api/costs/summary", token, query_string=window)
        by_feature = api.data("GET", "/api/costs/summary", token,
                              query_string={**window, "group_by": "tag:feature"})
        assert (whole["source"], by_feature["source"]) == ("rollups", "rollups")
        for summary in (whole, by_feature):
            assert Decimal(summary["totals"]["cost"]) == history.total
            assert summary["totals"]["calls"] == len(history.events)
        trend = api.data("GET", "/api/costs/timeseries", token,
                         query_string={**window, "interval": "day"})
        assert len(trend["points"]) == DAYS and all(Decimal(p["cost"]) > 0
                                                     for p in trend["points"])

    def test_recommendations_and_forecast_have_evidence(self, app: Flask, api: Api) -> None:
        """Every kind of recommendation fires on the month, and a monthly budget has spend
        and a forecast above it."""
        token, pid = self._project(api)
        backfill_project(app, pid, now=NOW)
        api.data("POST", "/api/budgets", token, {"project_id": pid, "amount": "100"}, status=201)
        with app.extensions["llmlab_db"][1]() as session:
            found = recommend(session, [pid], now=NOW).recommendations
            [(budget, _slug)] = statuses(session, [pid], now=NOW)
        assert {r.kind for r in found} == {
            "cheaper_model", "prompt_caching", "batch_api", "output_cap", "failed_calls"}
        assert "Switch gpt-3.5-turbo to gpt-4o-mini" in {r.title for r in found}
        assert budget.forecast is not None and budget.forecast > budget.spent > 0


@pytest.fixture
def demo_loggers() -> Iterator[None]:
    """Give back the log levels `demo.run_demo` quietens for its report."""
    loggers = [logging.getLogger(name) for name in ("llmlab_server", "werkzeug")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


class TestDemo:
    """``llmlab demo`` backfills before its live app runs."""

    @pytest.mark.usefixtures("demo_loggers")
    def test_history_is_there_before_the_live_calls(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the sample app starts, the server already holds the month, and the report's
        summaries and recommendations are made of it."""
        seen: list[Any] = []

        def sample_app(url: str, _key: str, _home: Any, result: demo.DemoResult, **_: Any) -> None:
            with Client(result.admin_key, url) as client:
                seen.append(client.summary(group_by="model"))

        monkeypatch.setattr(demo, "run_sample_app", sample_app)
        result = demo.run_demo(serve_forever=False, console=Console(file=io.StringIO()))
        [before] = seen
        assert before["totals"]["calls"] > 5000
        assert result.by_model["totals"] == before["totals"]
        assert {"gpt-3.5-turbo", "gpt-4o-mini"} <= {g["key"] for g in result.by_model["groups"]}
        kinds = {r["kind"] for r in result.recommendations["recommendations"]}
        assert {"cheaper_model", "batch_api", "output_cap", "failed_calls"} <= kinds
