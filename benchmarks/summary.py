"""Latency of cost summaries over large event tables.

Loads N events (spread over 90 days, 8 models, 50 jobs, 1,000 users, 20 values of the tag
``feature``) straight into a fresh database with set-based SQL (PostgreSQL: the event indexes
are dropped during the load and built after it, the fastest path), builds every rollup from
them (the hourly model rollup, and the job/user/tag rollups with migrations 0007's and 0010's
backfills),
then times ``GET /api/costs/summary`` through the full Flask stack (API-key auth included) and
reports p50/p95 for group_by model, job, user and tag:feature over two 30-day ranges:

* ``whole``: 2026-10-23T00:00Z to 2026-11-22T00:00Z (whole hours and days);
* ``partial``: "the last 30 days from now" with now = 2026-11-21T16:37:23.456Z, as a user or a
  script asks it (the partial hours at both ends are read from the events).

    python benchmarks/summary.py --backend postgres --events 1000000 10000000
    python benchmarks/summary.py --backend postgres --events 10000000 --database bench10m
    python benchmarks/summary.py --quick        # 100k events, both backends

``--database NAME`` (PostgreSQL) keeps the loaded database under that name and reuses it on
the next run with the same name, so 10M events are generated once.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
MODELS = ["gpt-4o", "gpt-4o-mini", "o3", "claude-sonnet-4-5", "claude-haiku-4-5",
          "gemini-2.5-pro", "gemini-2.5-flash", "mistral-large"]
COLUMNS = ("project_id, event_id, timestamp, received_at, provider, model, operation, "
           "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
           "cache_write_1h_tokens, reasoning_tokens, audio_input_tokens, audio_output_tokens, "
           "image_input_tokens, image_output_tokens, cost_nanos, cost_input_nanos, "
           "cost_cache_read_nanos, cost_cache_write_nanos, cost_output_nanos, "
           "cost_reasoning_nanos, server_cost_nanos, priced, server_priced, cost_mismatch, "
           "latency_ms, stream, estimated, status, job_id, user_id, tags")
GROUPS = ("model", "job", "user", "tag:feature")
RANGES = {"whole": ("2026-10-23T00:00:00Z", "2026-11-22T00:00:00Z"),
          "partial": ("2026-10-22T16:37:23.456Z", "2026-11-21T16:37:23.456Z")}
VERSIONS = Path(__file__).resolve().parent.parent / "server" / "llmlab_server" / "migrations" / "versions"
MIGRATIONS = ("0007_group_rollups.py", "0010_group_rollup_deltas.py")


def _select(n: str, ts: str, models: str, true: str, false: str, cast: str = "") -> str:
    # One row per n: 90 days back from the end, 8 models, 50 jobs, 1,000 users, 20 tag
    # values, 1 % errors.
    return (f"SELECT 1, 'e' || {n}, {ts}, {ts}, 'openai', {models}, 'chat.completions', "
            f"1000 + ({n} % 500), 200, 0, 0, 0, 0, 0, 0, 0, 0, 3500000 + ({n} % 1000), 0, 0, "
            f"0, 0, 0, 3500000, {true}, {true}, {false}, 500.0, {false}, {false}, "
            f"CASE WHEN {n} % 100 = 0 THEN 'error' ELSE 'ok' END, 'job-' || ({n} % 50), "
            f"'user-' || ({n} % 1000), ('{{\"feature\": \"f' || ({n} % 20) || '\"}}'){cast}")


def _backfill(migration: str) -> Any:
    """A migration's backfill of the job/user/tag rollups (the code that upgrades a database
    that has events): 0007's hourly and daily, 0010's weekly."""
    spec = importlib.util.spec_from_file_location(f"llmlab_migration_{migration[:4]}",
                                                  VERSIONS / migration)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.backfill


def _drop_event_indexes(conn: sa.Connection) -> list[str]:
    """Drop ``cost_events``' secondary indexes (PostgreSQL); the statements that rebuild them."""
    rows = conn.execute(sa.text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'cost_events' "
        "AND schemaname = current_schema() AND indexname LIKE 'ix_%'")).all()
    for name, _ in rows:
        conn.execute(sa.text(f'DROP INDEX "{name}"'))
    # A partitioned table's index reads "ON ONLY": rebuilt as that, no partition would get one.
    return [definition.replace(" ON ONLY ", " ON ") for _, definition in rows]


def load(engine: sa.Engine, events: int) -> None:
    """Insert ``events`` synthetic events and build every rollup from them."""
    from llmlab_server.services import partitions

    seconds = 90 * 86400
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO projects (id, name, slug, created_at) VALUES "
                             "(1, 'bench', 'bench', CURRENT_TIMESTAMP)"))
        rebuild = _drop_event_indexes(conn) if postgres else []
        if postgres and partitions.is_partitioned(conn):  # the months loaded, not the default
            month = partitions.month_start(datetime(2026, 11, 22) - timedelta(seconds=seconds))
            while month <= datetime(2026, 11, 1):
                if month not in partitions.month_partitions(conn):
                    partitions.create_partition(conn, month)
                month = partitions.add_months(month, 1)
    step = 1_000_000
    for lo in range(0, events, step):
        hi = min(events, lo + step)
        with engine.begin() as conn:
            if postgres:
                ts = f"(TIMESTAMP '2026-11-22 00:00:00' - ({seconds} * n / {events}) * INTERVAL '1 second')"
                models = f"(ARRAY{MODELS!r})[1 + n % {len(MODELS)}]"
                conn.execute(sa.text(f"INSERT INTO cost_events ({COLUMNS}) "
                                     + _select("n", ts, models, "true", "false", "::json")
                                     + f" FROM generate_series({lo}::bigint, {hi - 1}::bigint) AS n"))
            else:
                ts = ("strftime('%Y-%m-%d %H:%M:%S.000000', datetime('2026-11-22 00:00:00', '-' || "
                      f"({seconds} * n / {events}) || ' seconds'))")
                cases = " ".join(f"WHEN {i} THEN '{m}'" for i, m in enumerate(MODELS))
                models = f"CASE n % {len(MODELS)} {cases} END"
                conn.execute(sa.text(
                    f"WITH RECURSIVE s(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM s "
                    f"WHERE n < {hi - 1}) INSERT INTO cost_events ({COLUMNS}) "
                    + _select("n", ts, models, "1", "0") + " FROM s"))
    with engine.begin() as conn:
        for statement in rebuild:
            conn.execute(sa.text(statement))
    hour = ("date_trunc('hour', timestamp)" if postgres
            else "strftime('%Y-%m-%d %H:00:00.000000', timestamp)")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO cost_rollups_hourly (project_id, hour, provider, model, cost_nanos, "
            "calls, errors, input_tokens, output_tokens, cache_read_tokens, "
            "cache_write_tokens, reasoning_tokens, latency_ms_sum, latency_count) "
            f"SELECT project_id, {hour}, provider, model, sum(cost_nanos), count(*), "
            "sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), sum(input_tokens), "
            "sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), "
            "sum(reasoning_tokens), sum(latency_ms), count(latency_ms) FROM cost_events "
            f"GROUP BY project_id, {hour}, provider, model"))
        for migration in MIGRATIONS:
            _backfill(migration)(conn)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))


def time_summary(app: Any, key: str, params: dict[str, str], runs: int) -> dict[str, float]:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    samples = []
    for i in range(runs + 3):
        started = time.perf_counter()
        response = client.get("/api/costs/summary", query_string=params, headers=headers)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.get_json()
        if i >= 3:  # warm-up
            samples.append(elapsed * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
            "source": response.get_json()["data"]["source"],
            "calls": response.get_json()["data"]["totals"]["calls"]}


def _database(args: argparse.Namespace) -> tuple[str, Any]:
    """The PostgreSQL database URL to use and its cleanup (None: kept)."""
    admin = sa.create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    name = args.database or f"llmlab_bench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": name}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
    if args.database:
        admin.dispose()
        return url, None

    def cleanup() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, cleanup


def run(backend: str, events: int, args: argparse.Namespace) -> dict[str, Any]:
    from llmlab_server import create_app, db
    from llmlab_server.models import ApiKey
    from llmlab_server.security import new_api_key

    cleanup = None
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='llmlab-bench-')}/summary.db"
    else:
        url, cleanup = _database(args)
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM cost_events")).scalar()
        load_s = None
        if not stored:
            started = time.perf_counter()
            load(engine, events)
            load_s = round(time.perf_counter() - started, 1)
        elif stored != events:
            raise SystemExit(f"{url} holds {stored} events, not {events}")
        with engine.connect() as conn:
            rollups = {table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
                       for table in ("cost_rollups_hourly", "cost_rollups_group_hourly",
                                     "cost_rollups_group_daily", "cost_rollups_group_weekly")}
        engine.dispose()
        app = create_app({"ENV": "testing", "SECRET_KEY": "bench-secret-0123456789abcdefghij",
                          "DATABASE_URL": url, "AUTO_MIGRATE": False,
                          "RATE_LIMIT_BURST": 10**9})
        with app.app_context():
            secret, prefix, digest = new_api_key()
            session = db.session()
            session.add(ApiKey(project_id=1, name="bench", prefix=prefix, key_hash=digest,
                               scopes="read"))
            session.commit()
        timings = {}
        for range_name, (start, end) in RANGES.items():
            for group in GROUPS:
                timings[f"{group}_{range_name}"] = time_summary(
                    app, secret, {"start": start, "end": end, "group_by": group}, args.runs)
        app.extensions["llmlab_db"][0].dispose()
    finally:
        if cleanup:
            cleanup()
    return {"backend": backend, "events": events, "rollup_rows": rollups, "load_s": load_s,
            **timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "LLMLAB_BENCH_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100k events, 20 runs")
    parser.add_argument("--database", help="PostgreSQL: keep the loaded events in this "
                        "database and reuse them on the next run")
    args = parser.parse_args()
    if args.quick:
        args.events, args.runs = [100_000], 20
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for events in args.events:
        for backend in backends:
            print(json.dumps(run(backend, events, args)), flush=True)


if __name__ == "__main__":
    main()
