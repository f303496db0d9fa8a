"""Concurrency on PostgreSQL: deleting a project deletes its events, also while an ingest
for it is in flight; the last-owner rule holds when two owners step down at once.

``cost_events`` has no foreign key to ``projects`` (a trigger query per inserted row cost
PostgreSQL ~12 % of its ingest CPU). Instead an ingest checks the project once per batch
under the lock the key would have taken (``FOR KEY SHARE``), and a delete trigger on
``projects`` (migration 0003) deletes the project's events, however the row is deleted.
The races run on PostgreSQL, where ingests and deletions run concurrently (SQLite runs one
writer at a time); the deletion of a project's rows is checked on both databases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from llmlab_server import create_app, db
from llmlab_server.services.ingest import _COLUMNS, _check_project

from ..conftest import _fresh_postgres_schema, make_config
from ..helpers import Api, Tenant, make_event

_ROLLUP = ("INSERT INTO cost_rollups_hourly (project_id, hour, provider, model, cost_nanos, "
           "calls, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
           "reasoning_tokens, latency_ms_sum, latency_count) VALUES (:p, '2026-11-02 10:00:00', "
           "'openai', 'gpt-4o', 1, 1, 0, 1, 1, 0, 0, 0, 0, 0) ON CONFLICT (project_id, hour, "
           "provider, model) DO UPDATE SET calls = cost_rollups_hourly.calls + 1")


def _rows(engine: Engine, project_id: int) -> tuple[int, int]:
    """How many events and rollup rows ``project_id`` has."""
    with engine.connect() as conn:
        return (conn.execute(text("SELECT count(*) FROM cost_events WHERE project_id = :p"),
                             {"p": project_id}).scalar_one(),
                conn.execute(text("SELECT count(*) FROM cost_rollups_hourly "
                                  "WHERE project_id = :p"), {"p": project_id}).scalar_one())


def _engine(app: Flask) -> Engine:
    return app.extensions["llmlab_db"][0]  # type: ignore[no-any-return]


def test_deleting_a_project_deletes_its_events_and_rollups(app: Flask, api: Api) -> None:
    """Only the deleted project's events and rollups go; another tenant's stay; a second
    deletion is a 404."""
    mine, other = api.tenant(), api.tenant()
    api.track(mine.key, [make_event(), make_event()])
    api.track(other.key, [make_event()])
    assert _rows(_engine(app), mine.project_id) == (2, 1)
    api.data("DELETE", f"/api/projects/{mine.project_id}", mine.token)
    assert _rows(_engine(app), mine.project_id) == (0, 0)
    assert _rows(_engine(app), other.project_id) == (1, 1)
    assert api.call("DELETE", f"/api/projects/{mine.project_id}", mine.token).status_code == 404


def test_a_project_deleted_outside_the_api_takes_its_events(app: Flask, api: Api) -> None:
    """The delete trigger works for any DELETE of a project row (an operator's SQL, a
    future code path), not only through the API: no event outlives its project."""
    t = api.tenant()
    api.track(t.key, [make_event(), make_event()])
    with _engine(app).begin() as conn:
        conn.execute(text("DELETE FROM projects WHERE id = :p"), {"p": t.project_id})
    assert _rows(_engine(app), t.project_id) == (0, 0)


@pytest.fixture(scope="module")
def pg_app() -> Iterator[Flask]:
    """An app on a fresh PostgreSQL schema (these races need concurrent writers)."""
    url, schema, admin = _fresh_postgres_schema()
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        app = create_app(make_config(url))
        yield app
        _engine(app).dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(target()), daemon=True)
    thread.start()
    return thread, out


def _wait_until_blocked(conn: Connection, holder: int, thread: threading.Thread) -> None:
    """Until a backend waits for a lock that backend ``holder`` holds (or the thread ended,
    which the test then sees)."""
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        waiting = conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"),
            {"holder": holder}).scalar_one()
        conn.rollback()  # pg_stat_activity is read once per transaction
        if waiting:
            return
        time.sleep(0.02)


def _backend_pid(conn: Connection | Session) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_deletion_waits_for_an_ingest_in_flight_and_deletes_its_events(pg_app: Flask
                                                                         ) -> None:
    """An ingest that stored events and referenced the project commits first; the deletion
    then removes those events too (none is left without its project)."""
    api = Api(pg_app.test_client())
    t: Tenant = api.tenant()
    api.track(t.key, [make_event()])  # its rollup row exists: the next upsert only updates it
    copy = ", ".join("'late-event'" if c == "event_id" else f'"{c}"' for c in _COLUMNS)
    with Session(_engine(pg_app)) as ingest, _engine(pg_app).connect() as watch:
        # An ingest transaction as `_store` runs it: the project checked (and locked), one
        # more event stored, its rollup upserted; not committed yet.
        _check_project(ingest, t.project_id)
        ingest.execute(text(f"INSERT INTO cost_events ({', '.join(_COLUMNS)}) SELECT {copy} "
                            "FROM cost_events WHERE project_id = :p"), {"p": t.project_id})
        ingest.execute(text(_ROLLUP), {"p": t.project_id})
        thread, result = _in_thread(
            lambda: api.call("DELETE", f"/api/projects/{t.project_id}", t.token).status_code)
        _wait_until_blocked(watch, _backend_pid(ingest), thread)
        assert thread.is_alive(), "the deletion did not wait for the ingest"
        ingest.commit()
        thread.join(10)
    assert result == [200]
    assert _rows(_engine(pg_app), t.project_id) == (0, 0)


def test_an_ingest_after_a_deletion_began_stores_nothing(pg_app: Flask) -> None:
    """An ingest racing a deletion that came first waits for it, then finds the project
    gone: 404, nothing stored, no event left without its project."""
    api = Api(pg_app.test_client())
    t: Tenant = api.tenant()
    api.track(t.key, [make_event()])  # the racing batch's rollup row exists: an update
    with _engine(pg_app).connect() as deletion, _engine(pg_app).connect() as watch:
        # A deletion as `delete_project` runs it (the trigger deletes the events), stopped
        # before its commit. The API key is deleted with the project only at the commit.
        deletion.execute(text("DELETE FROM projects WHERE id = :p"), {"p": t.project_id})
        thread, result = _in_thread(lambda: api.track(t.key, [make_event()]).status_code)
        _wait_until_blocked(watch, _backend_pid(deletion), thread)
        assert thread.is_alive(), "the ingest did not wait for the deletion"
        deletion.commit()
        thread.join(10)
    assert result == [404]  # refused ("it was deleted"), not stored
    assert _rows(_engine(pg_app), t.project_id) == (0, 0)


def test_two_owners_demoting_themselves_at_once_keep_one(pg_app: Flask) -> None:
    """The last-owner rule holds under concurrency: the second demotion counts after the
    first committed and is refused (both used to count two owners, leaving none)."""
    api = Api(pg_app.test_client())
    first, second = api.signup(), api.signup()
    project = api.project(first["access_token"])
    pid = project["id"]
    api.add_member(first["access_token"], pid, second, "owner")
    with _engine(pg_app).connect() as demotion, _engine(pg_app).connect() as watch:
        # The first owner's demotion as `update_member` runs it, stopped before its commit.
        demotion.execute(text("SELECT id FROM projects WHERE id = :p FOR NO KEY UPDATE"),
                         {"p": pid})
        demotion.execute(text("UPDATE project_members SET role = 'admin' "
                              "WHERE project_id = :p AND user_id = :u"),
                         {"p": pid, "u": first["user"]["id"]})
        thread, result = _in_thread(lambda: api.call(
            "PATCH", f"/api/projects/{pid}/members/{second['user']['id']}",
            second["access_token"], {"role": "admin"}).status_code)
        _wait_until_blocked(watch, _backend_pid(demotion), thread)
        assert thread.is_alive(), "the second demotion did not wait for the first"
        demotion.commit()
        thread.join(10)
    assert result == [409]
    with _engine(pg_app).connect() as conn:
        owners = conn.execute(text("SELECT count(*) FROM project_members WHERE project_id = :p "
                                   "AND role = 'owner'"), {"p": pid}).scalar_one()
    assert owners == 1
