"""The ingest service's storage: the batch fast paths (COPY on PostgreSQL, per-row inserts on
SQLite), duplicates and races, and the row tuples and their COPY text."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select, text

from llmlab.schema import CostEvent
from llmlab_server import db
from llmlab_server.errors import NotFound
from llmlab_server.models import CostEventRow, CostRollupHourly, Project
from llmlab_server.services.ingest import _COLUMNS, _copy_text, _row, ingest

from ..helpers import make_event, make_project


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


class TestIngestFastPaths:
    """The batch validation, COPY (PostgreSQL) and per-row insert (SQLite) paths."""

    def test_duplicates_within_a_valid_batch(self, app: Flask) -> None:
        """The same id twice in one all-valid batch: the first is stored, counted once."""
        with app.app_context():
            session = db.session()
            project = make_project(session, "dup")
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
            project = make_project(session, "mixed")
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
            project = make_project(session, "partly")
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
            project = make_project(session, "exact")
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
            project = make_project(session, "order")
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
            project = make_project(session, "race")
            items = [make_event() for _ in range(5)]
            engine = session.get_bind()
            with engine.connect() as other:
                # The other request: the third event, inserted and not yet committed (on
                # PostgreSQL its id first, into cost_event_ids: the unique key of the
                # month-partitioned events, as ingest writes it).
                if other.dialect.name == "postgresql":
                    other.execute(text("INSERT INTO cost_event_ids (project_id, event_id) "
                                       "VALUES (:project, :event)"),
                                  {"project": project.id, "event": items[2]["id"]})
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
            project = make_project(session, "fail")
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
