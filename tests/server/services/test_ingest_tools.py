"""Ingest of built-in tool fees and provider-reported costs (#15)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from llmlab_server import db
from llmlab_server.models import CostEventRow, CostRollupHourly
from llmlab_server.services.ingest import ingest, to_nanos

from ..helpers import make_event, make_project


class TestToolCharges:
    """Built-in tool fees and provider-reported costs (#15), stored beside the token costs."""

    @staticmethod
    def _sdk_event(**fields: Any) -> dict[str, Any]:
        """An Anthropic call with 5 web searches, priced by the SDK as it sends it."""
        from anthropic.types import ServerToolUsage
        from anthropic.types import Usage as AnthropicUsage

        from llmlab.pricing import cost as sdk_cost
        from llmlab.schema import EventCost
        from llmlab.usage import Usage

        usage = Usage.from_any(AnthropicUsage(
            input_tokens=1000, output_tokens=200,
            server_tool_use=ServerToolUsage(web_search_requests=5, web_fetch_requests=1)))
        breakdown = sdk_cost("claude-sonnet-4-5", usage, "anthropic")
        return make_event(provider="anthropic", model="claude-sonnet-4-5",
                          usage=usage.to_sparse_dict(),
                          cost=EventCost.from_breakdown(breakdown).model_dump(mode="json"),
                          **fields)

    def test_an_event_with_tools_is_repriced_identically(self, app: Flask) -> None:
        """The server's price of a tool-using event equals the SDK's, fee included."""
        with app.app_context():
            session = db.session()
            project = make_project(session, "tools")
            event = self._sdk_event()
            assert event["cost"]["tools"] == "0.05" and event["cost"]["total"] == "0.056"
            assert ingest(session, project, [event]).accepted == 1
            session.expire_all()
            row = session.scalars(select(CostEventRow)).one()
            assert row.tools == {"web_search": 5, "web_fetch": 1}
            assert (row.cost_nanos, row.server_cost_nanos, row.cost_tools_nanos) == (
                56_000_000, 56_000_000, 50_000_000)
            assert row.cost_mismatch is False
            rollup = session.scalars(select(CostRollupHourly)).one()
            assert (rollup.cost_nanos, rollup.cost_tools_nanos) == (56_000_000, 50_000_000)

    def test_the_server_prices_tools_of_an_unpriced_event(self, app: Flask) -> None:
        """Without a client cost the server prices the tool uses from its catalogue."""
        with app.app_context():
            session = db.session()
            project = make_project(session, "tools-server")
            event = make_event(model="gpt-5", usage={
                "input_tokens": 1000, "output_tokens": 200,
                "tools": {"web_search": 2, "file_search": 1, "code_interpreter": 1}})
            ingest(session, project, [event])
            row = session.scalars(select(CostEventRow)).one()
            # gpt-5: 0.00325 of tokens; 2 * $0.01 + $0.0025 + $0.03 of tools.
            assert (row.cost_nanos, row.cost_tools_nanos) == (55_750_000, 52_500_000)
            assert row.server_priced is True

    def test_an_old_format_event_still_ingests(self, app: Flask) -> None:
        """An event from an SDK before tool costs (no tools, no provider cost) is stored as
        before, its tool figures zero and empty."""
        with app.app_context():
            session = db.session()
            project = make_project(session, "old-sdk")
            old = make_event(sdk={"name": "llmlab-python", "version": "0.1.0"},
                             cost={"input": "0.0025", "output": "0.001", "total": "0.0035",
                                   "currency": "USD", "priced": True,
                                   "pricing_version": "2026-11-12"})
            assert ingest(session, project, [old]).accepted == 1
            row = session.scalars(select(CostEventRow)).one()
            assert (row.cost_nanos, row.cost_tools_nanos, row.tools) == (3_500_000, 0, None)
            assert row.provider_cost_nanos is None and row.provider_cost_mismatch is False

    @pytest.mark.parametrize(("reported", "mismatch"), [
        ("0.0035", False), ("0.00352", False), ("0.0036", True), ("0.003", True)])
    def test_provider_cost_is_stored_and_a_disagreement_flagged(
            self, app: Flask, reported: str, mismatch: bool) -> None:
        """OpenRouter's own figure is kept beside llmlab's; more than 1 % apart is flagged."""
        with app.app_context():
            session = db.session()
            project = make_project(session, f"provider-{reported}")
            ingest(session, project, [make_event(provider_cost=reported)])  # llmlab: $0.0035
            row = session.scalars(select(CostEventRow).where(
                CostEventRow.project_id == project.id)).one()
            assert row.provider_cost_nanos == to_nanos(Decimal(reported))
            assert row.provider_cost_mismatch is mismatch

    @pytest.mark.parametrize("params", [
        {"start": "2026-11-01", "end": "2026-11-03"},  # whole hours: the rollups
        {"start": "2026-11-02T10:14:00Z", "end": "2026-11-02T10:20:00Z"},  # a partial hour
        {"start": "2026-11-01", "end": "2026-11-03", "group_by": "job"},  # group rollups
    ])
    def test_summaries_and_event_detail_show_tool_fees(self, api: Any,
                                                       params: dict[str, str]) -> None:
        """Summaries carry a tools cost figure from every source; an event's detail its tool
        uses, fees and the provider's own figure."""
        t = api.tenant()
        event = self._sdk_event(job_id="crawl", provider_cost="0.056")
        api.track(t.key, [event, make_event(job_id="crawl")])
        s = api.data("GET", "/api/costs/summary", t.key, query_string=params)
        assert s["totals"]["tools_cost"] == "0.05" and s["totals"]["cost"] == "0.0595"
        if "group_by" in params:
            assert [(g["key"], g["tools_cost"]) for g in s["groups"]] == [("crawl", "0.05")]
        page = api.data("GET", "/api/events", t.key, query_string={
            "start": "2026-11-01", "end": "2026-11-03", "model": "claude-sonnet-4-5"})
        detail = page["events"][0]
        assert detail["tools"] == {"web_search": 5, "web_fetch": 1}
        assert (detail["tools_cost"], detail["cost"]) == ("0.05", "0.056")
        assert (detail["provider_cost"], detail["provider_cost_mismatch"]) == ("0.056", False)
