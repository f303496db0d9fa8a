"""PostgreSQL's job/user/tag deltas: ingest appends them, `rollup_compaction` merges them into
the hourly and daily group rollups, and every summary is exact before, during and after."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select, text

from llmlab_server import db
from llmlab_server.models import CostEventRow
from llmlab_server.services import rollup_compaction, summary_sources
from llmlab_server.services.rollup_compaction import compact, compact_connection
from llmlab_server.services.summaries import parse_window

from ..helpers import Api
from .test_summaries import _answer, _expected_groups, _group_rollups, _random_events, _scan

BASE = datetime(2026, 11, 1, tzinfo=UTC)
DELTAS = "cost_rollups_group_deltas"


def _check_ranges(api: Api, key: str, slug: str, rows: list[CostEventRow],
                  rng: random.Random, days: int = 3) -> None:
    ranges = [(BASE, BASE + timedelta(days=days)), (BASE + timedelta(hours=5),
                                                    BASE + timedelta(hours=53))]
    for _ in range(5):
        a, b = sorted(rng.sample(range(days * 86400 + 1), 2))
        ranges.append((BASE + timedelta(seconds=a), BASE + timedelta(seconds=b)))
    for start, end in ranges:
        for group in ("job", "user", "tag:feature", "tag:team"):
            s = api.data("GET", "/api/costs/summary", key, query_string={
                "start": start.isoformat(), "end": end.isoformat(), "group_by": group})
            expected = {k: v[:4] for k, v in _scan(rows, slug, group, start, end).items()}
            assert _answer(s) == expected, (start, end, group)


def _count(app: Flask, table: str, project: int | None = None) -> int:
    with app.app_context():
        where = "" if project is None else f" WHERE project_id = {project}"
        return int(db.session().execute(text(f"SELECT count(*) FROM {table}{where}")).scalar())


@pytest.mark.postgres_only  # SQLite ingest upserts the group rollups directly
class TestDeltas:
    """Deltas appended, merged once, read exactly in every state."""

    def test_exact_before_between_and_after_merges(self, api: Api, app: Flask,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        """Half the batches merged, the rest still deltas (and a retry of a merged batch):
        every range and grouping equals a scan; a merge empties the deltas and leaves the
        rollups equal to the events."""
        monkeypatch.setattr(rollup_compaction, "INTERVAL_S", 3600.0)  # merges only when told
        rng = random.Random(23)
        t = api.tenant()
        events = _random_events(rng, 300)
        for chunk in range(0, 150, 50):
            assert api.track(t.key, events[chunk:chunk + 50]).status_code == 207
        with app.app_context():
            assert compact(db.session()) is True
        assert _count(app, DELTAS, t.project["id"]) == 0
        for chunk in range(150, 300, 50):
            assert api.track(t.key, events[chunk:chunk + 50]).status_code == 207
        assert api.track(t.key, events[:50]).get_json()["data"]["duplicates"] == 50
        assert _count(app, DELTAS, t.project["id"]) > 0
        with app.app_context():
            rows = list(db.session().scalars(select(CostEventRow).where(
                CostEventRow.project_id == t.project["id"])))
        assert len(rows) == 300
        _check_ranges(api, t.key, t.project["slug"], rows, rng)
        with app.app_context():
            assert compact(db.session()) is True
            assert compact(db.session()) is True  # nothing left: adds nothing
        assert _count(app, DELTAS, t.project["id"]) == 0
        _check_ranges(api, t.key, t.project["slug"], rows, rng)
        expected = _expected_groups(rows)
        for table in ("cost_rollups_group_hourly", "cost_rollups_group_daily"):
            assert _group_rollups(app, table, t.project["id"]) == expected

    def test_weeks(self, api: Api, app: Flask) -> None:
        """Events over four weeks: ranges with whole ISO weeks (read from the weekly rollup,
        the days around them from the daily one) equal a scan, before and after a merge."""
        rng = random.Random(37)
        t = api.tenant()
        events = _random_events(rng, 300)
        for event in events:  # spread over 4 weeks from Sunday 2026-11-01
            at = BASE + timedelta(seconds=rng.randrange(28 * 86400))
            event["timestamp"] = at.isoformat().replace("+00:00", "Z")
        for chunk in range(0, 300, 100):
            assert api.track(t.key, events[chunk:chunk + 100]).status_code == 207
        with app.app_context():
            rows = list(db.session().scalars(select(CostEventRow).where(
                CostEventRow.project_id == t.project["id"])))
        cut = summary_sources.spans(parse_window("2026-11-01T10:00:00Z", "2026-11-27T03:30:00Z",
                                                 "UTC", 366))
        assert cut.weeks == (BASE + timedelta(days=1), BASE + timedelta(days=22))
        _check_ranges(api, t.key, t.project["slug"], rows, rng, days=28)
        with app.app_context():
            compact(db.session())
        _check_ranges(api, t.key, t.project["slug"], rows, rng, days=28)
        assert _group_rollups(app, "cost_rollups_group_weekly", t.project["id"]) == (
            _expected_groups(rows))

    def test_one_merge_at_a_time(self, api: Api, app: Flask,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
        """A merge while another holds the lock skips; deltas appended during a merge wait
        for the next one; nothing is counted twice."""
        monkeypatch.setattr(rollup_compaction, "INTERVAL_S", 3600.0)
        rng = random.Random(29)
        t = api.tenant()
        events = _random_events(rng, 60)
        assert api.track(t.key, events[:30]).status_code == 207
        with app.app_context():
            engine = db.session().get_bind()
            with engine.connect() as holder:
                assert compact_connection(holder) is True  # merged, not committed, locked
                assert compact(db.session()) is False  # the other process skips
                assert api.track(t.key, events[30:]).status_code == 207  # during the merge
                holder.commit()
            assert _count(app, DELTAS, t.project["id"]) > 0  # the later batch's
            assert compact(db.session()) is True
            rows = list(db.session().scalars(select(CostEventRow).where(
                CostEventRow.project_id == t.project["id"])))
        assert _count(app, DELTAS, t.project["id"]) == 0
        expected = _expected_groups(rows)
        assert _group_rollups(app, "cost_rollups_group_hourly", t.project["id"]) == expected
        assert _group_rollups(app, "cost_rollups_group_daily", t.project["id"]) == expected

    def test_deleted_project_deltas_are_dropped(self, api: Api, app: Flask,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
        """Deltas of a project deleted before the merge do not stop it and are dropped."""
        monkeypatch.setattr(rollup_compaction, "INTERVAL_S", 3600.0)
        t = api.tenant()
        other = api.tenant()
        rng = random.Random(31)
        assert api.track(t.key, _random_events(rng, 20)).status_code == 207
        assert api.track(other.key, _random_events(rng, 20)).status_code == 207
        api.data("DELETE", f"/api/projects/{t.project['id']}", t.token)
        with app.app_context():
            assert compact(db.session()) is True
        assert _count(app, DELTAS) == 0
        assert _count(app, "cost_rollups_group_hourly", t.project["id"]) == 0
        assert _count(app, "cost_rollups_group_hourly", other.project["id"]) > 0
