"""The ingest service: money rounding, body decoding, storage and rollups."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select

from llmlab.schema import CostEvent
from llmlab_server import db
from llmlab_server.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from llmlab_server.models import CostEventRow, CostRollupHourly, Project
from llmlab_server.services.ingest import (
    _COLUMNS,
    _copy_text,
    _row,
    decode_batch,
    ingest,
    to_nanos,
)

from ..helpers import make_event


class TestToNanos:
    """USD to integer nano-USD."""

    @pytest.mark.parametrize(("amount", "nanos"), [
        ("0.00475", 4_750_000), ("0", 0), ("1", 1_000_000_000),
        ("0.0000000005", 0), ("0.0000000015", 2), ("0.0000000025", 2), ("0.00000000251", 3)])
    def test_rounds_half_even(self, amount: str, nanos: int) -> None:
        """Amounts round half-even to the nearest 1e-9 USD."""
        assert to_nanos(Decimal(amount)) == nanos


class TestDecodeBatch:
    """decode_batch."""

    def _decode(self, raw: bytes, encoding: str | None = None, max_bytes: int = 10_000,
                max_batch: int = 10) -> list:  # type: ignore[type-arg]
        return decode_batch(raw, "application/json", encoding, max_bytes=max_bytes,
                            max_batch=max_batch)

    def test_one_event_or_a_batch(self) -> None:
        """A bare event becomes a list of one; a batch is its events."""
        assert self._decode(b'{"id": "a"}') == [{"id": "a"}]
        assert self._decode(b'{"events": [{"id": "a"}, 1]}') == [{"id": "a"}, 1]

    def test_shape_errors(self) -> None:
        """Non-object bodies and a non-list events field are 400s."""
        for raw in (b"[]", b'"x"', b'{"events": {}}', b'{"events": [], "extra": 1}'):
            with pytest.raises(BadRequest):
                self._decode(raw)

    def test_limits(self) -> None:
        """Too many events is 422; too many bytes, raw or inflated, is 413."""
        with pytest.raises(Unprocessable):
            self._decode(json.dumps({"events": [{}] * 11}).encode())
        with pytest.raises(PayloadTooLarge):
            self._decode(b" " * 10_001)
        with pytest.raises(PayloadTooLarge):
            self._decode(gzip.compress(b" " * 20_000), "gzip")

    def test_encodings(self) -> None:
        """gzip is inflated; other encodings and non-JSON types are 415."""
        assert self._decode(gzip.compress(b'{"id": "z"}'), "gzip") == [{"id": "z"}]
        with pytest.raises(UnsupportedMediaType):
            self._decode(b"{}", "br")
        with pytest.raises(UnsupportedMediaType):
            decode_batch(b"{}", "text/plain", None, max_bytes=10, max_batch=1)


class TestIngest:
    """ingest() against the database."""

    def test_rollups_sum_only_new_events(self, app: Flask) -> None:
        """Rollups add tokens, cost, calls and errors of new events and ignore duplicates."""
        with app.app_context():
            session = db.session()
            project = Project(name="p", slug="p")
            session.add(project)
            session.commit()
            first = [make_event(), make_event(status="error", latency_ms=None)]
            ingest(session, project, first)
            ingest(session, project, [*first, make_event(timestamp="2026-11-02T10:59:59Z")])
            rollup = session.scalars(select(CostRollupHourly)).one()
            assert (rollup.calls, rollup.errors, rollup.input_tokens) == (3, 1, 3000)
            assert rollup.cost_nanos == 3 * 3_500_000
            assert rollup.latency_count == 2 and rollup.latency_ms_sum == 200.0
            assert rollup.hour.isoformat() == "2026-11-02T10:00:00+00:00"

    def test_results_are_in_input_order(self, app: Flask) -> None:
        """Every input position gets exactly one result, in order."""
        with app.app_context():
            session = db.session()
            project = Project(name="q", slug="q")
            session.add(project)
            session.commit()
            items = [make_event(), {}, make_event(project="other"), make_event()]
            result = ingest(session, project, items)
            assert [r.index for r in result.results] == [0, 1, 2, 3]
            assert (result.accepted, result.rejected) == (2, 2)


def ingest_row(event: dict[str, Any], project: Project) -> dict[str, Any]:
    """The stored row of one event, as the ingest service writes it."""
    received = datetime.now(UTC).isoformat(" ", "microseconds")[:26]
    row = dict(zip(_COLUMNS, _row(CostEvent.model_validate(event), project.id, project.slug,
                                  received, json.dumps), strict=True))
    for name in ("timestamp", "received_at"):  # naive-UTC text for the driver: back to times
        row[name] = datetime.fromisoformat(row[name]).replace(tzinfo=UTC)
    row["tags"] = json.loads(row["tags"])
    return row


def _ingest_in_new_session(app: Flask, project_id: int, items: list[Any]) -> Any:
    with app.app_context():
        session = db.session()
        return ingest(session, session.get(Project, project_id), items)


def _project(session, slug: str) -> Project:  # type: ignore[no-untyped-def]
    project = Project(name=slug, slug=slug)
    session.add(project)
    session.commit()
    return project


class TestIngestFastPaths:
    """The batch validation, COPY (PostgreSQL) and per-row insert (SQLite) paths."""

    def test_duplicates_within_a_valid_batch(self, app: Flask) -> None:
        """The same id twice in one all-valid batch: the first is stored, counted once."""
        with app.app_context():
            session = db.session()
            project = _project(session, "dup")
            first = make_event(id="same-id")
            items = [first, make_event(), make_event(id="same-id", model="gpt-4o-mini")]
            result = ingest(session, project, items)
            assert [r.status for r in result.results] == ["accepted", "accepted", "duplicate"]
            assert [r.id for r in result.results] == ["same-id", items[1]["id"], "same-id"]
            row = session.scalars(select(CostEventRow).where(
                CostEventRow.event_id == "same-id")).one()
            assert row.model == "gpt-4o"
            rollup = session.scalars(select(CostRollupHourly)).one()
            assert rollup.calls == 2

    def test_invalid_events_fall_back_to_per_event_results(self, app: Flask) -> None:
        """A batch with invalid events still stores the valid ones, each with its own result."""
        with app.app_context():
            session = db.session()
            project = _project(session, "mixed")
            good = [make_event() for _ in range(3)]
            items = [good[0], {"id": "bad", "provider": "openai"}, good[1], 42,
                     make_event(usage={"input_tokens": -1}), good[2], good[0]]
            result = ingest(session, project, items)
            assert [r.status for r in result.results] == [
                "accepted", "rejected", "accepted", "rejected", "rejected", "accepted",
                "duplicate"]
            assert (result.accepted, result.duplicates, result.rejected) == (3, 1, 3)
            assert result.results[1].id == "bad" and result.results[3].id is None
            assert result.results[1].error is not None
            assert result.results[1].error.code == "invalid_event"
            assert "timestamp" in result.results[1].error.message
            stored = set(session.scalars(select(CostEventRow.event_id)))
            assert stored == {e["id"] for e in good}
            assert session.scalars(select(CostRollupHourly)).one().calls == 3

    def test_partly_stored_batch(self, app: Flask) -> None:
        """Resending a batch with new events in it stores and rolls up only the new ones."""
        with app.app_context():
            session = db.session()
            project = _project(session, "partly")
            old = [make_event() for _ in range(3)]
            ingest(session, project, old)
            new = [make_event(), make_event()]
            result = ingest(session, project, [old[0], new[0], old[1], new[1], old[2]])
            assert [r.status for r in result.results] == [
                "duplicate", "accepted", "duplicate", "accepted", "duplicate"]
            assert session.scalars(select(CostRollupHourly)).one().calls == 5
            assert len(list(session.scalars(select(CostEventRow.id)))) == 5
            again = ingest(session, project, old + new)
            assert (again.accepted, again.duplicates) == (0, 5)
            assert session.scalars(select(CostRollupHourly)).one().calls == 5

    def test_values_survive_storage_exactly(self, app: Flask) -> None:
        """Text with tabs, newlines, commas, quotes, backslashes and non-ASCII, NULLs, floats,
        booleans and timestamps come back exactly as sent (COPY's text, SQLite's formats)."""
        with app.app_context():
            session = db.session()
            project = _project(session, "exact")
            tricky = "tab\there\nnew\\line\r\\N é 🙂 'q' \"d\", \"\"e\","
            event = make_event(
                model="gpt-4o", function=tricky, job_id="\\N", user_id="u\\tx",
                tags={"feature": tricky, "empty": ""}, latency_ms=0.1 + 0.2, ttfb_ms=None,
                stream=True, estimated=True, status="error", error_type="Timeout",
                timestamp="2026-11-02T12:15:00.123456+02:00", environment=None,
                sdk={"name": "llmlab-python", "version": "1.0"},
                usage={"input_tokens": 2000, "output_tokens": 500, "cache_read_tokens": 1000,
                       "reasoning_tokens": 100},
                cost={"input": "0.0025", "cache_read": "0.00125", "output": "0.004",
                      "total": "0.00775"})
            plain = make_event(timestamp="2026-11-02T10:00:00Z")
            ingest(session, project, [event, plain])
            session.expire_all()
            row = session.scalars(select(CostEventRow).where(
                CostEventRow.event_id == event["id"])).one()
            assert row.function == tricky and row.job_id == "\\N" and row.user_id == "u\\tx"
            assert row.tags == {"feature": tricky, "empty": ""}
            assert row.latency_ms == 0.1 + 0.2 and row.ttfb_ms is None
            assert (row.stream, row.estimated, row.status) == (True, True, "error")
            assert row.environment is None and row.sdk_name == "llmlab-python"
            assert row.timestamp.isoformat() == "2026-11-02T10:15:00.123456+00:00"
            assert (row.cost_nanos, row.cost_input_nanos, row.cost_output_nanos) == (
                7_750_000, 2_500_000, 4_000_000)
            assert row.priced is True and row.server_priced is False
            assert row.reasoning_tokens == 100
            # Whole-second timestamps compare like ones SQLAlchemy wrote (SQLite keeps text).
            at = row.timestamp.replace(hour=10, minute=0, second=0, microsecond=0)
            hits = list(session.scalars(select(CostEventRow.event_id).where(
                CostEventRow.timestamp >= at, CostEventRow.timestamp <= at)))
            assert hits == [plain["id"]]

    def test_ids_follow_batch_order(self, app: Flask) -> None:
        """Rows get ascending ids in batch order (event listings break time ties by id)."""
        with app.app_context():
            session = db.session()
            project = _project(session, "order")
            items = [make_event() for _ in range(20)]
            ingest(session, project, items)
            stored = list(session.scalars(select(CostEventRow.event_id).order_by(
                CostEventRow.id)))
            assert stored == [e["id"] for e in items]

    def test_an_id_stored_concurrently_is_a_duplicate_not_an_error(self, app: Flask) -> None:
        """Another request is storing one of this batch's ids: this batch waits for it (on
        the unique index in PostgreSQL, for the write lock in SQLite), and that id is then a
        duplicate, not an error and not counted twice."""
        with app.app_context():
            session = db.session()
            project = _project(session, "race")
            items = [make_event() for _ in range(5)]
            engine = session.get_bind()
            with engine.connect() as other:
                # The other request: the third event, inserted and not yet committed.
                other.execute(insert(CostEventRow), [ingest_row(items[2], project)])
                result: list[Any] = []
                racing = threading.Thread(target=lambda: result.append(
                    _ingest_in_new_session(app, project.id, items)))
                racing.start()
                racing.join(0.5)
                assert racing.is_alive(), "the batch should wait for the other transaction"
                other.commit()
                racing.join(10)
            [outcome] = result
            assert [r.status for r in outcome.results] == [
                "accepted", "accepted", "duplicate", "accepted", "accepted"]
            assert session.scalars(select(CostRollupHourly.calls)).one() == 4
            assert len(set(session.scalars(select(CostEventRow.event_id)))) == 5

    def test_a_failed_batch_leaves_nothing_behind(self, app: Flask) -> None:
        """When storing fails the transaction rolls back and the next batch is unaffected."""
        with app.app_context():
            session = db.session()
            project = _project(session, "fail")
            ghost = Project(id=987_654, name="gone", slug="gone")  # never stored (or deleted)
            with pytest.raises(NotFound):
                ingest(session, ghost, [make_event()])
            assert session.scalars(select(CostEventRow.event_id)).all() == []
            session.rollback()
            items = [make_event(), make_event()]
            result = ingest(session, project, items)
            assert result.accepted == 2
            assert set(session.scalars(select(CostEventRow.event_id))) == {
                e["id"] for e in items}


class TestRows:
    """The row tuples and their COPY text."""

    def test_columns_are_the_tables_but_its_key(self) -> None:
        """`_row`'s layout names every stored column once, the surrogate key aside."""
        names = [c.name for c in CostEventRow.__table__.columns if c.name != "id"]
        assert sorted(_COLUMNS) == sorted(names) and len(set(_COLUMNS)) == len(_COLUMNS)

    def test_row_values_by_column(self) -> None:
        """Each value lands under its column name, in driver-ready form."""
        project = Project(id=7, name="r", slug="r")
        event = make_event(timestamp="2026-11-02T12:15:00.5+02:00", job_id="j", tags={"a": "é"},
                           usage={"input_tokens": 2000, "output_tokens": 500,
                                  "cache_read_tokens": 1000})
        row = ingest_row(event, project)
        raw = dict(zip(_COLUMNS, _row(CostEvent.model_validate(event), 7, "r",
                                      "2026-11-02 10:00:00.000000", json.dumps), strict=True))
        assert raw["timestamp"] == "2026-11-02 10:15:00.500000"
        assert raw["tags"] == '{"a": "\\u00e9"}' and row["tags"] == {"a": "é"}
        assert (raw["project_id"], raw["job_id"], raw["user_id"]) == (7, "j", None)
        assert (raw["input_tokens"], raw["cache_read_tokens"], raw["output_tokens"]) == (
            2000, 1000, 500)
        # gpt-4o: 1000 x $2.50/M + 1000 x $1.25/M cached + 500 x $10/M, server-priced
        assert (raw["cost_input_nanos"], raw["cost_cache_read_nanos"],
                raw["cost_output_nanos"], raw["cost_nanos"]) == (
            2_500_000, 1_250_000, 5_000_000, 8_750_000)
        assert (raw["priced"], raw["server_priced"], raw["server_cost_nanos"]) == (
            True, True, 8_750_000)

    def test_copy_text_nulls_empties_and_escapes(self) -> None:
        """NULL is ``\\N``, an empty string stays empty, and a value with a tab, newline,
        carriage return or backslash is escaped, whatever other rows of the batch hold."""
        base = list(_row(CostEvent.model_validate(make_event()), 1, "p",
                         "2026-11-02 10:00:00.000000", json.dumps))
        at = {name: _COLUMNS.index(name) for name in ("job_id", "user_id", "function")}
        plain, empty, tricky = list(base), list(base), list(base)
        plain[at["job_id"]] = "job-1"
        empty[at["job_id"]] = ""
        tricky[at["function"]] = "a\tb\nc\rd\\e \\N"
        lines = _copy_text([tuple(plain), tuple(empty), tuple(tricky)]).split("\n")
        assert lines[-1] == "" and len(lines) == 4
        fields = [line.split("\t") for line in lines[:3]]
        assert [f[0] for f in fields] == ["0", "1", "2"]  # the batch position leads
        assert all(len(f) == 1 + len(_COLUMNS) for f in fields)
        job, user, function = (1 + at["job_id"], 1 + at["user_id"], 1 + at["function"])
        assert (fields[0][job], fields[0][user], fields[0][function]) == ("job-1", "\\N", "\\N")
        assert fields[1][job] == ""
        assert fields[2][function] == "a\\tb\\nc\\rd\\\\e \\\\N"
        assert fields[2][user] == "\\N"


class TestIngestBody:
    """ingest_body: the whole-body validation of an all-valid batch, and its fallback."""

    def _body(self, events: list[Any]) -> bytes:
        return json.dumps({"events": events}).encode()

    def test_valid_batch_matches_event_by_event(self, app: Flask) -> None:
        """A valid batch stores the same rows and gives the same results on both paths."""
        from llmlab_server.services.ingest import ingest_body

        def stored(session: Any, slug: str) -> list[tuple[Any, ...]]:
            rows = session.scalars(
                select(CostEventRow).join(Project, Project.id == CostEventRow.project_id)
                .where(Project.slug == slug).order_by(CostEventRow.id)).all()
            return [tuple(getattr(r, c) for c in _COLUMNS if c not in (
                "project_id", "received_at")) for r in rows]

        events = [make_event(), make_event(job_id="j\tk", tags={"x": "ü"}, ttfb_ms=1.5,
                                           stream=True),
                  make_event(cost={"input": "0.0025", "output": "0.001", "total": "0.0035"},
                             sdk={"name": "llmlab-python", "version": "1"}),
                  make_event(status="error", error_type="RateLimitError", latency_ms=None)]
        with app.app_context():
            session = db.session()
            fast_project, slow_project = _project(session, "fast"), _project(session, "slow")
            fast = ingest_body(session, fast_project, self._body(events), "application/json",
                               None, max_bytes=1_000_000, max_batch=10)
            slow = ingest(session, slow_project, events)
            assert fast.model_dump() == slow.model_dump()
            assert fast.accepted == 4
            assert stored(session, "fast") == stored(session, "slow")
            assert len(stored(session, "fast")) == 4

    def test_invalid_or_single_bodies_fall_back(self, app: Flask) -> None:
        """An invalid event, a bare event and a too-large batch get the per-event answers."""
        from llmlab_server.services.ingest import ingest_body

        with app.app_context():
            session = db.session()
            project = _project(session, "fallback")
            good = make_event()
            result = ingest_body(session, project, self._body([good, {"id": "x"}]),
                                 "application/json", None, max_bytes=1_000_000, max_batch=10)
            assert [r.status for r in result.results] == ["accepted", "rejected"]
            assert result.results[1].error is not None
            single = ingest_body(session, project, json.dumps(make_event()).encode(),
                                 "application/json", None, max_bytes=1_000_000, max_batch=10)
            assert single.accepted == 1
            again = ingest_body(session, project, self._body([good]), "application/json",
                                None, max_bytes=1_000_000, max_batch=10)
            assert (again.accepted, again.duplicates) == (0, 1)
            with pytest.raises(Unprocessable):
                ingest_body(session, project, self._body([make_event(), make_event()]),
                            "application/json", None, max_bytes=1_000_000, max_batch=1)


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
            project = _project(session, "tools")
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
            project = _project(session, "tools-server")
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
            project = _project(session, "old-sdk")
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
            project = _project(session, f"provider-{reported}")
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
