"""Exact sums: money and tokens never overflow a read, on SQLite or PostgreSQL (issue #18)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import BigInteger, Subquery, literal, select, union_all

from llmlab_server.services import ingest
from llmlab_server.services.sums import Exact, fold, select_list

from ..helpers import Api, Tenant, make_event

#: Ten events at the wire schema's maximum ($1e9 each) sum to 1e19 nano-USD > 2**63 - 1.
ABSURD = "1000000000"
TOTAL = 10 * 10**18


def _absurd_events(**fields: Any) -> list[dict[str, Any]]:
    """Ten $1e9 events stamped now, each of its own model (so ten saturated rollup rows)."""
    now = datetime.now(UTC).isoformat()
    return [make_event(timestamp=now, model=f"gpt-4o-x{i}", cost={"total": ABSURD},
                       job_id="nightly", user_id="mallory", tags={"team": "red"}, **fields)
            for i in range(10)]


@pytest.fixture
def flooded(api: Api, monkeypatch: pytest.MonkeyPatch) -> Tenant:
    """A tenant whose project holds ten $1e9 events this hour (stored as before the per-event
    cap, or as ~9,223 capped ones would add up), with budgets of every kind."""
    monkeypatch.setattr(ingest, "MAX_EVENT_COST_NANOS", 10**18)
    t = api.tenant()
    for scope in ({}, {"job": "nightly"}, {"user": "mallory"}, {"tag": "team=red"}):
        api.data("POST", "/api/budgets", t.token, {
            "project_id": t.project_id, "amount": "100", "period": "daily",
            "action": "block", "scope": scope}, status=201)
    response = api.track(t.key, _absurd_events())
    assert response.get_json()["data"]["accepted"] == 10
    return t


def _numbers(*xs: int) -> Subquery:
    """A one-column (``x``) subquery of ``xs``."""
    return union_all(*(select(literal(x, BigInteger).label("x")) for x in xs)).subquery()


class TestExactSum:
    """`select_list` and `fold` sum beyond 64 bits exactly."""

    def test_sum_past_int64_is_exact(self, app: Flask) -> None:
        """Three values near 2**63 sum to their exact (wider than 64-bit) total."""
        big = 2**63 - 1
        rows = _numbers(big, big, 12345)
        items = [Exact(rows.c.x)]
        engine = app.extensions["llmlab_db"][0]
        with engine.connect() as conn:
            stmt = select(*select_list(engine.dialect.name, items)).select_from(rows)
            (total,) = fold(items, conn.execute(stmt).one())
        assert total == 2 * big + 12345

    def test_empty_sum_is_zero(self, app: Flask) -> None:
        """No rows sum to 0, not None."""
        rows = _numbers(1)
        items = [Exact(rows.c.x)]
        engine = app.extensions["llmlab_db"][0]
        with engine.connect() as conn:
            stmt = (select(*select_list(engine.dialect.name, items)).select_from(rows)
                    .where(rows.c.x > 1))
            assert fold(items, conn.execute(stmt).one()) == (0,)


class TestAbsurdSpendIsReadNot500:
    """Reads over a period of absurd spend answer exactly instead of failing with 500."""

    def test_budget_status_reports_exact_spend(self, api: Api, flooded: Tenant) -> None:
        """Every budget (rollups and events paths) reports the exact $1e10 spent, not a 500,
        so the SDK guard still gets a status and blocks."""
        got = api.data("GET", f"/api/budgets/status?project={flooded.project_id}",
                       flooded.token)["budgets"]
        assert len(got) == 4
        for b in got:
            assert b["error"] is None
            assert b["spent"] == "10000000000" and b["remaining"] == "0"
            assert b["forecast"] is not None and Decimal(b["forecast"]) >= 10**10

    def test_alerts_are_recorded_and_listed(self, api: Api, flooded: Tenant) -> None:
        """The 100 % alerts are stored with spend saturated at BIGINT's maximum, listed 200."""
        api.data("GET", f"/api/budgets/status?project={flooded.project_id}", flooded.token)
        alerts = api.data("GET", f"/api/alerts?project={flooded.project_id}", flooded.token)
        hundred = [a for a in alerts if a["kind"] == "threshold" and a["threshold"] == 100]
        assert len(hundred) == 4
        assert {a["spent"] for a in hundred} == {"9223372036.854775807"}

    @pytest.mark.parametrize("group", ["model", "project", "day", "hour", "job", "user",
                                       "tag:team", None])
    def test_summaries_sum_exactly(self, api: Api, flooded: Tenant, group: str | None) -> None:
        """Summaries from rollups and from events give the exact total past 2**63 nano-USD."""
        start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:00:00Z")
        query = f"/api/costs/summary?project={flooded.project_id}&start={start}"
        if group:
            query += f"&group_by={group}"
        data = api.data("GET", query, flooded.token)
        assert data["totals"]["cost"] == "10000000000"

    def test_odd_window_reads_events_exactly(self, api: Api, flooded: Tenant) -> None:
        """A window not on whole hours (events path) and a timeseries sum exactly too."""
        start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:07:00Z")
        data = api.data("GET", f"/api/costs/summary?project={flooded.project_id}"
                        f"&start={start}&tz=Asia/Kolkata&group_by=day", flooded.token)
        assert data["totals"]["cost"] == "10000000000"
        series = api.data("GET", f"/api/costs/timeseries?project={flooded.project_id}"
                          "&interval=day", flooded.token)
        assert sum(Decimal(p["cost"]) for p in series["points"]) == 10**10

    def test_recommendations_answer(self, api: Api, flooded: Tenant) -> None:
        """Recommendations read the same sums and answer 200."""
        api.data("GET", f"/api/recommendations?project={flooded.project_id}", flooded.token)


class TestPerEventCap:
    """An event may cost at most `ingest.MAX_EVENT_COST_NANOS` ($1,000,000)."""

    def test_event_over_the_cap_is_rejected(self, api: Api) -> None:
        """$1,000,000 is accepted; a cent more, or the schema's $1e9, is rejected alone."""
        t = api.tenant()
        events = [make_event(cost={"total": "1000000"}), make_event(cost={"total": "1000000.01"}),
                  make_event(cost={"total": ABSURD}), make_event()]
        data = api.track(t.key, events).get_json()["data"]
        assert (data["accepted"], data["rejected"]) == (2, 2)
        assert [r["status"] for r in data["results"]] == [
            "accepted", "rejected", "rejected", "accepted"]
        assert data["results"][1]["error"]["code"] == "cost_too_large"

    def test_server_price_over_the_cap_is_rejected(self, api: Api) -> None:
        """An unpriced event whose tokens the server prices above the cap is rejected too."""
        t = api.tenant()
        event = make_event(model="o1-pro", usage={"input_tokens": 0,
                                                   "output_tokens": 10_000_000_000})
        data = api.track(t.key, [event]).get_json()["data"]
        assert data["results"][0]["error"]["code"] == "cost_too_large"
