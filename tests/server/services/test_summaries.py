"""The summaries service: time windows, rollups that answer like a scan of the events for
any range, ``limit`` and its ``other`` bucket."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, select, text

from llmlab_server import db
from llmlab_server.errors import BadRequest
from llmlab_server.models import MAX_ID, CostEventRow
from llmlab_server.services import summary_sources
from llmlab_server.services.rollup_compaction import compact
from llmlab_server.services.summaries import parse_window, usd

from ..helpers import Api, make_event

NOW = datetime(2026, 11, 22, 16, 20, tzinfo=UTC)


class TestParseWindow:
    """parse_window."""

    def test_default_is_the_last_30_days_to_the_next_hour(self) -> None:
        """Without start/end the window is 30 days ending at the next whole hour."""
        w = parse_window(None, None, "UTC", 366, now=NOW)
        assert w.end == datetime(2026, 11, 22, 17, tzinfo=UTC)
        assert (w.end - w.start).days == 30 and w.hour_aligned

    def test_dates_are_local_midnights(self) -> None:
        """A date means local midnight in tz, converted to UTC."""
        w = parse_window("2026-11-01", "2026-11-02", "Asia/Kolkata", 366)
        assert w.start == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
        assert not w.hour_aligned and not w.whole_hour_offsets()

    def test_explicit_offsets_win_over_tz(self) -> None:
        """A datetime with an offset is taken as is, whatever tz says."""
        w = parse_window("2026-11-01T00:00:00Z", "2026-11-01T05:00:00+00:00",
                         "America/New_York", 366)
        assert w.start == datetime(2026, 11, 1, tzinfo=UTC) and w.whole_hour_offsets()

    @pytest.mark.parametrize(("start", "end", "tz", "code"), [
        ("2026-01-01", "2027-01-03", "UTC", "range_too_large"),
        ("2026-01-02", "2026-01-01", "UTC", "invalid_range"),
        ("2026-13-01", "2026-01-01", "UTC", "invalid_time"),
        ("2026-01-01", "2026-01-02", "Nowhere/City", "invalid_timezone")])
    def test_bad_windows(self, start: str, end: str, tz: str, code: str) -> None:
        """Oversized, inverted, malformed and unknown-zone windows are 400s with a code."""
        with pytest.raises(BadRequest) as info:
            parse_window(start, end, tz, 366)
        assert info.value.code == code


class TestUsd:
    """usd()."""

    def test_formats_nanos_as_plain_decimal(self) -> None:
        """Nano-USD become plain decimal strings without exponent or trailing zeros."""
        assert [usd(n) for n in (0, 1, 4_750_000, 12_000_000_000)] == [
            "0", "0.000000001", "0.00475", "12"]


# -- rollups answer like a scan of the events, for any range --------------------------------

BASE = datetime(2026, 11, 1, tzinfo=UTC)
GROUPS = (None, "model", "provider", "project", "job", "user", "tag:feature", "day", "hour")


def _random_events(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """``n`` events over three days: some without job, user or tag, some errors, some
    without latency, three models of two providers."""
    events = []
    for _ in range(n):
        at = BASE + timedelta(seconds=rng.randrange(3 * 86400))
        provider, model = rng.choice([("openai", "gpt-4o"), ("openai", "gpt-4o-mini"),
                                      ("anthropic", "claude-sonnet-4-5")])
        fields: dict[str, Any] = {
            "timestamp": at.isoformat().replace("+00:00", "Z"), "provider": provider,
            "model": model, "usage": {"input_tokens": rng.randrange(1, 5000),
                                      "output_tokens": rng.randrange(0, 900),
                                      "cache_read_tokens": rng.randrange(0, 3)},
            "latency_ms": rng.choice([None, rng.uniform(10, 900)]),
            "status": rng.choice(["ok", "ok", "ok", "error"])}
        if rng.random() < 0.8:
            fields["job_id"] = f"job-{rng.randrange(6)}"
        if rng.random() < 0.7:
            fields["user_id"] = f"user-{rng.randrange(9)}"
        tags = {"feature": f"f{rng.randrange(4)}"} if rng.random() < 0.6 else {}
        if rng.random() < 0.3:
            tags["team"] = "red"
        fields["tags"] = tags
        events.append(make_event(**fields))
    return events


def _scan(rows: list[CostEventRow], slug: str, group: str | None, start: datetime,
          end: datetime) -> dict[str | None, tuple[int, int, int, int, int]]:
    """Per group: (cost nanos, calls, errors, input tokens, latency count), summed in Python
    from the stored events (UTC day/hour keys as the API prints them)."""
    out: dict[str | None, list[int]] = {}
    for r in rows:
        if not start <= r.timestamp < end:
            continue
        if group is None:
            key = None
        elif group == "project":
            key = slug
        elif group in ("model", "provider"):
            key = getattr(r, group)
        elif group == "job":
            key = r.job_id
        elif group == "user":
            key = r.user_id
        elif group == "day":
            key = r.timestamp.date().isoformat()
        elif group == "hour":
            key = r.timestamp.replace(minute=0, second=0, microsecond=0).isoformat()
        else:
            key = (r.tags or {}).get(group.removeprefix("tag:"))
        acc = out.setdefault(key, [0, 0, 0, 0, 0])
        acc[0] += r.cost_nanos
        acc[1] += 1
        acc[2] += r.status == "error"
        acc[3] += r.input_tokens
        acc[4] += r.latency_ms is not None
    return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in out.items()}


def _answer(summary: dict[str, Any]) -> dict[str | None, tuple[int, int, int, int]]:
    rows = summary["groups"] if summary["group_by"] else [summary["totals"]]
    return {r["key"]: (int(Decimal(r["cost"]) * 10**9), r["calls"], r["errors"],
                       r["tokens"]["input_tokens"]) for r in rows}


class TestRollupsMatchEvents:
    """Every grouping over random ranges (whole hours, partial hours, whole days, a few
    minutes) equals a scan of the stored events."""

    def test_random_ranges(self, api: Api, app: Flask) -> None:
        """Rollups for the whole hours and events for the partial ones give the scan's sums."""
        rng = random.Random(19)
        t = api.tenant()
        events = _random_events(rng, 400)
        for chunk in range(0, len(events), 100):
            assert api.track(t.key, events[chunk:chunk + 100]).status_code == 207
        with app.app_context():
            rows = list(db.session().scalars(select(CostEventRow)))
        ranges = [(BASE, BASE + timedelta(days=3)),  # whole days
                  (BASE + timedelta(hours=5), BASE + timedelta(hours=53)),  # whole hours
                  (BASE + timedelta(minutes=7), BASE + timedelta(hours=1, minutes=3)),
                  (BASE + timedelta(minutes=3), BASE + timedelta(minutes=40))]  # no hour
        for _ in range(8):
            a, b = sorted(rng.sample(range(3 * 86400 + 1), 2))
            ranges.append((BASE + timedelta(seconds=a), BASE + timedelta(seconds=b)))
        sources = set()
        for start, end in ranges:
            for group in GROUPS:
                params = {"start": start.isoformat(), "end": end.isoformat()}
                if group:
                    params["group_by"] = group
                s = api.data("GET", "/api/costs/summary", t.key, query_string=params)
                expected = _scan(rows, t.project["slug"], group, start, end)
                answer = _answer(s)
                if group in ("day", "hour"):
                    answer = {k[:10] if group == "day" else
                              datetime.fromisoformat(k).astimezone(UTC).isoformat(): v
                              for k, v in answer.items()}
                assert answer == {k: v[:4] for k, v in expected.items()} or (
                    not expected and answer == {None: (0, 0, 0, 0)}), (start, end, group)
                if group is None and expected:
                    latency = [r.latency_ms for r in rows if start <= r.timestamp < end
                               and r.latency_ms is not None]
                    assert s["totals"]["avg_latency_ms"] == (pytest.approx(
                        sum(latency) / len(latency), abs=1e-3) if latency else None)
                sources.add(s["source"])
        assert sources == {"rollups", "events"}  # the minutes-only range has no whole hour


class TestSpans:
    """How a window is cut."""

    def test_partial_edges_whole_hours_and_days(self) -> None:
        """Partial hours at the ends are events; whole days and the hours around them rollups."""
        w = parse_window("2026-11-01T10:20:00Z", "2026-11-04T03:10:00Z", "UTC", 366)
        cut = summary_sources.spans(w)
        h = lambda d, hh, mm=0: datetime(2026, 11, d, hh, mm, tzinfo=UTC)  # noqa: E731
        assert cut.edges == [(h(1, 10, 20), h(1, 11)), (h(4, 3), h(4, 3, 10))]
        assert cut.hours == (h(1, 11), h(4, 3))
        assert cut.days == (h(2, 0), h(4, 0))
        assert cut.loose_hours == [(h(1, 11), h(2, 0)), (h(4, 0), h(4, 3))]

    def test_window_inside_one_hour_is_all_events(self) -> None:
        """A window with no whole hour is read from events only (under two hours of them)."""
        w = parse_window("2026-11-01T10:20:00Z", "2026-11-01T11:10:00Z", "UTC", 366)
        cut = summary_sources.spans(w)
        assert cut.edges == [(w.start, w.end)] and cut.hours is None


class TestLimit:
    """``limit`` and the ``other`` bucket."""

    def test_costliest_groups_and_the_rest_in_other(self, api: Api) -> None:
        """limit=2 keeps the two costliest jobs; the other three are summed in `other`."""
        t = api.tenant()
        events = [make_event(job_id=f"job-{i}", usage={"input_tokens": 1000 * (i + 1)})
                  for i in range(5) for _ in range(i + 1)]
        events.append(make_event())  # no job: the null group, the cheapest
        api.track(t.key, events)
        params = {"start": "2026-11-01T09:30:00Z", "end": "2026-11-03", "group_by": "job"}
        full = api.data("GET", "/api/costs/summary", t.key, query_string=params)
        cut = api.data("GET", "/api/costs/summary", t.key,
                       query_string={**params, "limit": 2})
        assert [g["key"] for g in cut["groups"]] == ["job-4", "job-3"]
        assert cut["group_count"] == full["group_count"] == 6 and full["other"] is None
        assert cut["other"]["calls"] == 3 + 2 + 1 + 1
        assert Decimal(cut["other"]["cost"]) == sum(
            Decimal(g["cost"]) for g in full["groups"][2:])
        assert cut["totals"] == full["totals"]

    @pytest.mark.parametrize("params", [
        {"limit": 0, "group_by": "job"}, {"limit": 10_001, "group_by": "job"},
        {"limit": "x", "group_by": "job"}, {"limit": 3, "group_by": "day"}, {"limit": 3}])
    def test_bad_limits_are_400(self, api: Api, params: dict[str, Any]) -> None:
        """A limit out of range, not a number, or without a grouping of values is a 400."""
        t = api.tenant()
        response = api.call("GET", "/api/costs/summary", t.key, query_string=params)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_request"


# -- rollups are maintained once per event, and built for existing databases ------------------

def _group_rollups(app: Flask, table: str, project: int | None = None
                   ) -> dict[tuple[str, str], tuple[int, int]]:
    """(dimension, value) -> (calls, cost nanos) summed over ``table``'s rows (of
    ``project``, when given)."""
    where = "" if project is None else f"WHERE project_id = {int(project)} "
    with app.app_context():
        rows = db.session().execute(text(
            f"SELECT dimension, key, sum(calls), sum(cost_nanos) FROM {table} {where}"
            "GROUP BY dimension, key")).all()
    return {(d, k): (int(c), int(n)) for d, k, c, n in rows}


def _expected_groups(rows: list[Any]) -> dict[tuple[str, str], tuple[int, int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        keys = [("tag:" + k, v) for k, v in (r.tags or {}).items()]
        keys += [(d, v) for d, v in (("job", r.job_id), ("user", r.user_id)) if v is not None]
        for key in keys:
            acc = out.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += r.cost_nanos
    return {k: (v[0], v[1]) for k, v in out.items()}


class TestIngestCountsOnce:
    """Duplicates and retried batches add nothing to the group rollups."""

    def test_retries_and_partial_duplicates(self, api: Api, app: Flask) -> None:
        """A batch sent twice, a batch half old and half new, and an id twice in one batch
        leave the hourly and daily group rollups equal to a scan of the stored events."""
        t = api.tenant()
        rng = random.Random(5)
        first = _random_events(rng, 30)
        assert api.track(t.key, first).get_json()["data"]["accepted"] == 30
        assert api.track(t.key, first).get_json()["data"]["duplicates"] == 30  # a retry
        mixed = first[:10] + _random_events(rng, 10)
        result = api.track(t.key, mixed).get_json()["data"]
        assert (result["accepted"], result["duplicates"]) == (10, 10)
        twice = _random_events(rng, 1)
        assert api.track(t.key, twice + twice).get_json()["data"]["accepted"] == 1
        with app.app_context():
            rows = list(db.session().scalars(select(CostEventRow)))
        assert len(rows) == 41
        with app.app_context():  # PostgreSQL: the deltas not merged yet (SQLite has none)
            compact(db.session())
        expected = _expected_groups(rows)
        assert _group_rollups(app, "cost_rollups_group_hourly") == expected
        assert _group_rollups(app, "cost_rollups_group_daily") == expected


_EVENT_COLUMNS = (
    "project_id, event_id, timestamp, received_at, provider, model, operation, input_tokens, "
    "output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, "
    "reasoning_tokens, audio_input_tokens, audio_output_tokens, image_input_tokens, "
    "image_output_tokens, cost_nanos, cost_input_nanos, cost_cache_read_nanos, "
    "cost_cache_write_nanos, cost_output_nanos, cost_reasoning_nanos, priced, server_priced, "
    "cost_mismatch, latency_ms, stream, estimated, status, job_id, user_id, tags")


def _backfill_case(engine: Engine) -> None:
    """Events stored at revision 0006 get their group rollups from migration 0007."""
    db.upgrade(engine, "0006")
    rng = random.Random(7)
    events = []
    for i in range(300):
        at = BASE + timedelta(seconds=rng.randrange(4 * 86400))
        job = rng.choice([None, "etl", "chat"])
        user = rng.choice([None, "ann", "bob", "cy"])
        tags = rng.choice([{}, {"feature": "search"}, {"feature": "chat", "team": "red"}])
        events.append({"e": f"e{i}", "t": at.replace(tzinfo=None), "cost": rng.randrange(10**9),
                       "status": rng.choice(["ok", "error"]), "job": job, "user": user,
                       "tags": json.dumps(tags)})
    # Past 2**63 in one hour and job: the backfill saturates instead of failing.
    events += [{"e": f"big{i}", "t": datetime(2026, 11, 1, 5), "cost": 10**18,
                "status": "ok", "job": "huge", "user": None, "tags": "{}"} for i in range(10)]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (id, name, slug, created_at) "
                          "VALUES (1, 'p', 'p', CURRENT_TIMESTAMP)"))
        tags = "CAST(:tags AS json)" if engine.dialect.name == "postgresql" else ":tags"
        conn.execute(text(
            f"INSERT INTO cost_events ({_EVENT_COLUMNS}) VALUES (1, :e, :t, :t, 'openai', "
            "'gpt-4o', 'chat', 10, 5, 0, 0, 0, 0, 0, 0, 0, 0, :cost, 0, 0, 0, 0, 0, true, "
            f"true, false, 12.5, false, false, :status, :job, :user, {tags})"), events)
    db.upgrade(engine, "0007")
    expected: dict[tuple[str, str], list[int]] = {}
    for e in events:
        keys = [("tag:" + k, v) for k, v in json.loads(e["tags"]).items()]
        keys += [(d, v) for d, v in (("job", e["job"]), ("user", e["user"])) if v is not None]
        for key in keys:
            acc = expected.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += e["cost"]
    expected[("job", "huge")][1] = MAX_ID  # ten $1e9 events in one hour: saturated
    with engine.connect() as conn:
        for table in ("cost_rollups_group_hourly", "cost_rollups_group_daily"):
            rows = conn.execute(text(
                f"SELECT dimension, key, sum(calls), sum(cost_nanos) FROM {table} "
                "GROUP BY dimension, key")).all()
            assert {(d, k): [int(c), int(n)] for d, k, c, n in rows} == expected, table
        hours = conn.execute(text("SELECT count(DISTINCT hour) FROM cost_rollups_group_hourly"
                                  )).scalar_one()
        days = conn.execute(text("SELECT count(DISTINCT day) FROM cost_rollups_group_daily"
                                 )).scalar_one()
    assert days == 4 and hours > 24


class TestBackfill:
    """Migration 0007 builds the group rollups of the events a database already holds."""

    def test_sqlite(self, tmp_path: Path) -> None:
        """On SQLite (events inserted at 0006, then upgraded)."""
        engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        try:
            _backfill_case(engine)
        finally:
            engine.dispose()

    def test_postgres(self) -> None:
        """On PostgreSQL (a fresh schema)."""
        from ..conftest import _fresh_postgres_schema

        url, schema, admin = _fresh_postgres_schema()
        engine = db.make_engine(url)
        try:
            _backfill_case(engine)
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()
