"""PostgreSQL's month partitions of ``cost_events`` (migration 0012, `services.partitions`):
the migration keeps every row and summary, ingest stays exactly idempotent, partitions are
made ahead, retention drops whole months and keeps rollup totals."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import Connection, text

from llmlab.cli._app import cli
from llmlab_server import create_app, db
from llmlab_server.models import utcnow
from llmlab_server.services import partitions, retention

from ..conftest import _fresh_postgres_schema, make_config
from ..helpers import Api, Tenant, make_event

pytestmark = pytest.mark.postgres_only  # SQLite keeps one plain table

#: Months with events (and one older than `YEARS_BACK`: the default partition).
TIMES = ["2026-06-03T10:00:00Z", "2026-07-15T23:59:59Z", "2026-08-01T00:00:00Z",
         "2026-09-30T12:00:00Z", "2026-10-20T08:30:00Z", "2010-01-01T00:00:00Z"]


def _seed(api: Api, tenant: Tenant, times: list[str] = TIMES) -> list[dict[str, Any]]:
    events = [make_event(timestamp=at, job_id=f"job-{i % 2}", user_id="ann",
                         tags={"team": "red"}, usage={"input_tokens": 1000 + i,
                                                      "output_tokens": 100})
              for i, at in enumerate(t for t in times for _ in range(3))]
    assert api.track(tenant.key, events).get_json()["data"]["accepted"] == len(events)
    return events


def _summaries(api: Api, tenant: Tenant) -> dict[str, Any]:
    return {group: api.data("GET", "/api/costs/summary", tenant.key, query_string={
        "start": start, "end": "2026-11-01", "group_by": group})
        for group in ("model", "job", "user", "tag:team") for start in ("2025-11-02",
                                                                          "2026-06-01")}


def _rows(conn: Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(text(
        "SELECT id, project_id, event_id, timestamp, cost_nanos, job_id FROM cost_events "
        "ORDER BY id"))]


def _where(conn: Connection, event_id: str) -> list[str]:
    """The partitions rows of ``event_id`` are in."""
    return [str(r) for r in conn.execute(text(
        "SELECT tableoid::regclass FROM cost_events WHERE event_id = :e"), {"e": event_id})
        .scalars()]


def _count(app: Flask, sql: str) -> int:
    with app.app_context():
        return int(db.session().execute(text(sql)).scalar_one())


def test_migration_keeps_every_row_and_summary() -> None:
    """Events of six months: down to 0011 (one plain table) and up again keeps every row
    (ids too) and every summary; the months get partitions, 2010 the default one; a resend
    stores nothing; new events get new ids."""
    url, schema, admin = _fresh_postgres_schema()
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        app = create_app(make_config(url))
        api = Api(app.test_client())
        tenant = api.tenant()
        events = _seed(api, tenant)
        before = _summaries(api, tenant)
        with engine.connect() as conn:
            rows = _rows(conn)
        cfg = db._alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0011")
        with engine.connect() as conn:
            assert not partitions.is_partitioned(conn) and _rows(conn) == rows
        app.extensions["llmlab_db"][0].dispose()
        db.upgrade(engine)
        app.extensions["llmlab_db"][0].dispose()
        with engine.connect() as conn:
            assert partitions.is_partitioned(conn) and _rows(conn) == rows
            months = partitions.month_partitions(conn)
            assert {f"{m:%Y-%m}" for m in months} >= {
                "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", f"{utcnow():%Y-%m}"}
            assert _where(conn, events[0]["id"]) == ["cost_events_p202606"]
            assert _where(conn, events[-1]["id"]) == [partitions.DEFAULT]
            assert conn.execute(text("SELECT count(*) FROM cost_event_ids")).scalar() == 18
        assert _summaries(api, tenant) == before
        assert api.track(tenant.key, events).get_json()["data"]["duplicates"] == 18
        assert api.track(tenant.key, [make_event()]).get_json()["data"]["accepted"] == 1
        with engine.connect() as conn:
            assert len(_rows(conn)) == 19 and max(r[0] for r in _rows(conn)) > rows[-1][0]
        app.extensions["llmlab_db"][0].dispose()
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_ingest_lands_in_its_month_and_a_resend_is_stored_once(api: Api, app: Flask) -> None:
    """An event goes to its month's partition; the same id again, with the same or another
    timestamp (another month, the default partition), is a duplicate: one row, the rollups
    unchanged."""
    tenant = api.tenant()
    now = utcnow()
    event = make_event(timestamp=now.isoformat().replace("+00:00", "Z"), job_id="j")
    assert api.track(tenant.key, [event]).get_json()["data"]["accepted"] == 1
    with app.app_context():
        assert _where(db.session().connection(), event["id"]) == [
            partitions.partition_name(now)]
    window = {"start": f"{now.year}-01-01", "end": f"{now.year + 1}-01-01", "group_by": "job"}
    first = api.data("GET", "/api/costs/summary", tenant.key, query_string=window)
    for at in (event["timestamp"], "2026-01-05T00:00:00Z", "2005-03-01T00:00:00Z"):
        resent = dict(event, timestamp=at)
        assert api.track(tenant.key, [resent]).get_json()["data"]["duplicates"] == 1
    with app.app_context():
        assert _where(db.session().connection(), event["id"]) == [
            partitions.partition_name(now)]
    assert api.data("GET", "/api/costs/summary", tenant.key, query_string=window) == first
    assert _count(app, "SELECT count(*) FROM cost_event_ids") == 1


def test_partitions_are_created_ahead(api: Api, app: Flask, database_url: str) -> None:
    """`ensure` makes this month's and the next `MONTHS_AHEAD` months' partitions once, and
    moves a month's rows out of the default partition; a starting server makes them too."""
    tenant = api.tenant()
    (far,) = [e["id"] for e in _seed(api, tenant, ["2040-06-10T00:00:00Z"])[:1]]
    with app.app_context():
        session = db.session()
        assert _where(session.connection(), far) == [partitions.DEFAULT]
        made = partitions.ensure(session.connection(), now=datetime(2040, 5, 20, tzinfo=UTC))
        session.commit()
        assert made == ["cost_events_p204005", "cost_events_p204006", "cost_events_p204007",
                        "cost_events_p204008"]
        assert _where(session.connection(), far) == ["cost_events_p204006"]
        assert partitions.ensure(session.connection(),
                                 now=datetime(2040, 5, 20, tzinfo=UTC)) == []
        last = partitions.add_months(partitions.month_start(utcnow()), partitions.MONTHS_AHEAD)
        session.execute(text(f"DROP TABLE {partitions.partition_name(last)}"))
        session.commit()
    started = create_app(make_config(database_url))
    with started.app_context():
        assert last in partitions.month_partitions(db.session().connection())
    started.extensions["llmlab_db"][0].dispose()
    assert _count(app, "SELECT count(*) FROM cost_events") == 3


def test_retention_drops_old_partitions_and_keeps_rollup_totals(api: Api, app: Flask) -> None:
    """Whole months before the cutoff are dropped (tables, ids and quota counts gone), the
    partly expired month loses its older rows only, every whole-hour summary is unchanged."""
    tenant, other = api.tenant(), api.tenant()
    times = ["2026-08-05T10:00:00Z", "2026-09-09T10:00:00Z", "2026-10-15T10:00:00Z",
             "2026-10-20T10:00:00Z"]
    _seed(api, tenant, times)
    _seed(api, other, times[1:])
    before = _summaries(api, tenant), _summaries(api, other)
    with app.app_context():
        session = db.session()
        deleted = retention.prune(session, datetime(2026, 10, 18, tzinfo=UTC), batch_size=2)
        months = partitions.month_partitions(session.connection())
    assert deleted == 9 + 6
    assert datetime(2026, 10, 1) in months
    assert datetime(2026, 9, 1) not in months and datetime(2026, 8, 1) not in months
    assert _count(app, "SELECT count(*) FROM cost_events") == 6
    assert _count(app, "SELECT count(*) FROM cost_event_ids") == 6
    assert _count(app, "SELECT count(*) FROM cost_events WHERE timestamp < '2026-10-18'") == 0
    assert (_summaries(api, tenant), _summaries(api, other)) == before


def test_partitions_command(app: Flask, database_url: str) -> None:
    """``llmlab server db partitions --ahead 5`` makes five months ahead and lists them."""
    result = CliRunner().invoke(cli, ["server", "db", "partitions", "--database", database_url,
                                      "--ahead", "5"])
    assert result.exit_code == 0, result.output
    last = partitions.add_months(partitions.month_start(utcnow()), 5)
    with app.app_context():
        assert last in partitions.month_partitions(db.session().connection())
    assert result.output.startswith("created ") and partitions.DEFAULT in result.output


def test_concurrent_resends_with_other_timestamps_store_each_id_once(api: Api,
                                                                      app: Flask) -> None:
    """Four clients send the same 200 ids at once, each with its own month: every id is
    stored once (in one partition), accepted once in all, and counted once in the rollups."""
    tenant = api.tenant()
    ids = [f"same-{i}" for i in range(200)]
    months = ["2026-07", "2026-08", "2026-09", "2026-10"]
    barrier = threading.Barrier(len(months))
    accepted: list[int] = []

    def send(month: str) -> None:
        client = Api(app.test_client())
        events = [make_event(id=i, timestamp=f"{month}-10T10:00:00Z") for i in ids]
        barrier.wait()
        accepted.append(client.track(tenant.key, events).get_json()["data"]["accepted"])

    threads = [threading.Thread(target=send, args=(m,)) for m in months]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(accepted) == 200 and len(accepted) == 4
    assert _count(app, "SELECT count(*) FROM cost_events") == 200
    assert _count(app, "SELECT count(DISTINCT event_id) FROM cost_events") == 200
    assert _count(app, "SELECT count(*) FROM cost_event_ids") == 200
    summary = api.data("GET", "/api/costs/summary", tenant.key, query_string={
        "start": "2026-07-01", "end": "2026-11-01", "group_by": "model"})
    assert sum(g["calls"] for g in summary["groups"]) == 200
