"""Adding a batch's increments to the rollup tables, in the ingest transaction.

* ``cost_rollups_hourly`` — per (project, UTC hour, provider, model);
* ``cost_rollups_group_hourly`` — per (project, dimension, UTC hour, value), the dimension
  being ``job``, ``user`` or ``tag:<key>``;
* ``cost_rollups_group_daily`` — the same per UTC day;
* ``cost_rollups_group_weekly`` — the same per ISO week (PostgreSQL only).

On PostgreSQL one statement sums the batch's staging table (`upsert_staged`): the model rollup
is upserted (a few rows a batch) and the job/user/tag sums (~250 rows a batch of 500 events)
are *appended* to ``cost_rollups_group_deltas`` with a plain INSERT, which costs a fraction of
an upsert; `rollup_compaction` merges the deltas into the hourly and daily group rollups
(`merge_sql`) and reads add the unmerged deltas. On SQLite (one writer at a time) the
increments are summed in Python and upserted straight into the three tables (`upsert`). Each
upsert runs in key order, so concurrent batches lock rows in the same order (no deadlocks).

The integer sums saturate at BIGINT's maximum instead of overflowing: an absurd cost or
token count (the schema allows up to $1e9 an event) must not fail every later batch of its
hour, which the SDK would retry for ever. (SQLite turns an overflowing integer sum into a real
number, which min() brings back to the maximum.) Reads sum these columns exactly (`sums`).
"""

from __future__ import annotations

from typing import Any

from psycopg2.extras import execute_values
from sqlalchemy.orm import Session

from llmlab_server.models import MAX_ID

__all__ = ["DELTAS", "GROUP_DAILY", "GROUP_HOURLY", "MODEL_HOURLY", "SUMS", "merge_sql", "upsert",
           "upsert_staged"]

#: The summed columns of every rollup table, in the order increments carry them.
SUMS = ("cost_nanos", "calls", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "reasoning_tokens", "latency_ms_sum", "latency_count",
        "cost_tools_nanos")
MODEL_HOURLY = ("cost_rollups_hourly", ("project_id", "hour", "provider", "model"))
GROUP_HOURLY = ("cost_rollups_group_hourly", ("project_id", "dimension", "hour", "key"))
GROUP_DAILY = ("cost_rollups_group_daily", ("project_id", "dimension", "day", "key"))
GROUP_WEEKLY = ("cost_rollups_group_weekly", ("project_id", "dimension", "week", "key"))
#: Job/user/tag increments appended by PostgreSQL ingest (`llmlab_server.models.rollup_deltas`).
DELTAS = "cost_rollups_group_deltas"

_SATURATED_SUM = {
    "postgresql": "LEAST({t}.{c}::numeric + excluded.{c}, {max})::bigint",
    "sqlite": "min({t}.{c} + excluded.{c}, {max})",
}


def _sql(dialect: str, table: str, key: tuple[str, ...]) -> str:
    columns = key + SUMS
    values = "%s" if dialect == "postgresql" else f"({', '.join('?' * len(columns))})"
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(
                f"{c} = " + (f"{table}.{c} + excluded.{c}" if c == "latency_ms_sum" else
                             _SATURATED_SUM[dialect].format(t=table, c=c, max=MAX_ID))
                for c in SUMS))


_UPSERTS = {(dialect, table): _sql(dialect, table, key)
            for dialect in _SATURATED_SUM for table, key in (MODEL_HOURLY, GROUP_HOURLY,
                                                            GROUP_DAILY)}


def upsert(session: Session, table: tuple[str, tuple[str, ...]],
           increments: list[tuple[Any, ...]]) -> None:
    """Add ``increments`` (key columns then `SUMS`, sorted by key) to ``table``'s rows: one
    statement on PostgreSQL, one prepared run per row on SQLite.

    Plain SQL through the driver: SQLAlchemy's statement building and bulk path cost more
    than the upsert itself (about 2 ms of a 500-event batch).
    """
    if not increments:
        return
    dialect = session.get_bind().dialect.name
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        sql = _UPSERTS[dialect, table[0]]
        if dialect == "postgresql":
            execute_values(cur, sql, increments, page_size=len(increments))
        else:
            cur.executemany(sql, increments)
    finally:
        cur.close()


def _set_clause(dialect: str, table: str) -> str:
    return ", ".join(f"{c} = " + (f"{table}.{c} + excluded.{c}" if c == "latency_ms_sum" else
                                  _SATURATED_SUM[dialect].format(t=table, c=c, max=MAX_ID))
                     for c in SUMS)


def _capped(expr: str) -> str:
    return f"LEAST(sum({expr})::numeric, {MAX_ID})::bigint"


#: Each of `SUMS` over the staged events ``e`` (PostgreSQL).
_EVENT_SUMS = {
    "cost_nanos": _capped("e.cost_nanos"), "calls": "count(*)",
    "errors": "sum(CASE WHEN e.status = 'error' THEN 1 ELSE 0 END)",
    "input_tokens": _capped("e.input_tokens"), "output_tokens": _capped("e.output_tokens"),
    "cache_read_tokens": _capped("e.cache_read_tokens"),
    "cache_write_tokens": _capped("e.cache_write_tokens + e.cache_write_1h_tokens"),
    "reasoning_tokens": _capped("e.reasoning_tokens"),
    "latency_ms_sum": "coalesce(sum(e.latency_ms), 0)", "latency_count": "count(e.latency_ms)",
    "cost_tools_nanos": _capped("e.cost_tools_nanos"),
}
_COLUMNS = ", ".join(SUMS)


def _insert(table: tuple[str, tuple[str, ...]], select: str) -> str:
    name, key = table
    return (f"INSERT INTO {name} ({', '.join(key)}, {_COLUMNS}) {select} "
            f"ORDER BY {', '.join(str(i + 1) for i in range(len(key)))} "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {_set_clause('postgresql', name)}")


def merge_sql(source: str) -> str:
    """The statement that adds ``source``'s rows (a CTE or table of delta rows: project,
    dimension, hour, key, `SUMS`) to the hourly, daily and weekly group rollups, in key
    order."""
    resummed = ", ".join(f"coalesce(sum({c}), 0)" if c == "latency_ms_sum" else _capped(c)
                         for c in SUMS)
    hours = _insert(GROUP_HOURLY, f"SELECT project_id, dimension, hour, key, {resummed} "
                                  f"FROM {source} GROUP BY 1, 2, 3, 4")
    days = _insert(GROUP_DAILY, "SELECT project_id, dimension, date_trunc('day', hour), key, "
                                f"{resummed} FROM {source} GROUP BY 1, 2, 3, 4")
    weeks = _insert(GROUP_WEEKLY, "SELECT project_id, dimension, date_trunc('week', hour), "
                                  f"key, {resummed} FROM {source} GROUP BY 1, 2, 3, 4")
    return f"h AS ({hours}), w AS ({days}) {weeks}"


def _staged_sql(stage: str, where: str) -> str:
    """One statement: the model rollup of ``stage``'s rows (``where``) upserted, and their
    job, user and tag sums per value and hour appended to the deltas (plain INSERT)."""
    sums = ", ".join(f"{_EVENT_SUMS[c]} AS {c}" for c in SUMS)
    models = _insert(MODEL_HOURLY, (
        f"SELECT e.project_id, date_trunc('hour', e.timestamp), e.provider, e.model, {sums} "
        f"FROM {stage} e {where} GROUP BY 1, 2, 3, 4"))
    return (f"WITH m AS ({models}) INSERT INTO {DELTAS} (project_id, dimension, hour, key, "
            f"{_COLUMNS}) SELECT e.project_id, d.dimension, date_trunc('hour', e.timestamp), "
            f"d.key, {sums} FROM {stage} e CROSS JOIN LATERAL ("
            "SELECT 'job', e.job_id WHERE e.job_id IS NOT NULL "
            "UNION ALL SELECT 'user', e.user_id WHERE e.user_id IS NOT NULL "
            "UNION ALL SELECT 'tag:' || t.key, t.value FROM json_each_text(e.tags) AS t "
            f"WHERE length(t.key) <= 64) AS d(dimension, key) {where} GROUP BY 1, 2, 3, 4")


def upsert_staged(session: Session, stage: str, new_ids: list[str] | None) -> None:
    """PostgreSQL: add the batch in the staging table ``stage`` (only the events ``new_ids``
    when given) to the model rollup and append its job/user/tag sums to the deltas, summed in
    the database: no Python loop over the events and no literal values to parse (with them,
    251 job/user/tag rows of a 500-event batch cost more in the worker and in PostgreSQL's
    parser than the writes themselves). The deltas are merged later (`rollup_compaction`)."""
    where = "" if new_ids is None else "WHERE e.event_id = ANY(%(ids)s)"
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        cur.execute(_staged_sql(stage, where), {"ids": new_ids})
    finally:
        cur.close()
