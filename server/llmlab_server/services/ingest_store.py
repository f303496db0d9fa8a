"""Storing a batch's rows: events inserted once, the new ones rolled up, in one transaction.

Events are inserted with ``INSERT ... ON CONFLICT (project_id, event_id) DO NOTHING`` and only
the rows that were new are added to the rollups (`rollup_upserts`: per model and hour, per
job, user and tag value and hour and day; on PostgreSQL the job/user/tag sums are appended as
deltas and merged after the commit by `rollup_compaction`), so a batch sent twice is stored
once and counted once. Rows come from `llmlab_server.services.ingest` as tuples
of driver-ready values in ``_COLUMNS`` order.

* On PostgreSQL the tuples are streamed as ``COPY`` text, one ``%`` format per row, into a
  per-connection temporary table (``ON COMMIT DELETE ROWS``) and moved with one statement:
  the ids into ``cost_event_ids`` (``ON CONFLICT DO NOTHING RETURNING event_id``), the rows
  of the new ones into ``cost_events``, a table partitioned by month (`partitions`).
* On SQLite the tuples go through the driver's prepared ``INSERT ... ON CONFLICT DO NOTHING``
  one by one; the row count says which were new.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from operator import is_, itemgetter
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.orm import Session

from llmlab_server.errors import NotFound
from llmlab_server.models import MAX_ID, CostEventRow
from llmlab_server.services.partitions import maybe_ensure
from llmlab_server.services.rollup_compaction import maybe_compact
from llmlab_server.services.rollup_upserts import (
    GROUP_DAILY,
    GROUP_HOURLY,
    MODEL_HOURLY,
    upsert,
    upsert_staged,
)

__all__ = ["store"]

_EVENTS: Table = CostEventRow.__table__  # type: ignore[assignment]
#: The columns an ingest writes (all but the surrogate key), in the order of `_row`'s tuple.
_COLUMNS = (
    "project_id", "event_id", "timestamp", "received_at", "provider", "model",
    "requested_model", "operation", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens", "audio_input_tokens",
    "audio_output_tokens", "image_input_tokens", "image_output_tokens", "cost_nanos",
    "cost_input_nanos", "cost_cache_read_nanos", "cost_cache_write_nanos", "cost_output_nanos",
    "cost_reasoning_nanos", "server_cost_nanos", "priced", "server_priced", "cost_mismatch",
    "pricing_version", "latency_ms", "ttfb_ms", "stream", "estimated", "status", "error_type",
    "service_tier", "job_id", "user_id", "function", "tags", "environment", "sdk_name",
    "sdk_version", "cost_tools_nanos", "tools", "provider_cost_nanos", "provider_cost_mismatch")
_COLUMN_LIST = ", ".join(f'"{c}"' for c in _COLUMNS)
_STAGE = "llmlab_ingest_stage"  # a temporary table: pg_temp, never shadows cost_events
(_ID, _TIME, _PROVIDER, _MODEL, _COST, _SERVER_COST, _STATUS, _LATENCY) = map(
    _COLUMNS.index, ("event_id", "timestamp", "provider", "model", "cost_nanos",
                     "server_cost_nanos", "status", "latency_ms"))

_JOB, _USER, _TAGS = map(_COLUMNS.index, ("job_id", "user_id", "tags"))
_TOOLS_COST = _COLUMNS.index("cost_tools_nanos")
_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE, _CACHE_WRITE_1H, _REASONING = map(
    _COLUMNS.index, ("input_tokens", "output_tokens", "cache_read_tokens",
                     "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens"))
#: The positions of the columns that may hold NULL, and COPY's text for each row shape.
_NULLABLE = tuple(i for i, name in enumerate(_COLUMNS) if _EVENTS.c[name].nullable)
_nullable_values = itemgetter(*_NULLABLE)
_NO_VALUES = (None,) * len(_NULLABLE)
_COPY_FORMATS: dict[tuple[bool, ...], tuple[str, int]] = {}
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _rollups(project_id: int, rows: Sequence[tuple[Any, ...]]
             ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rollup increments of ``rows``: per (hour, provider, model), per (dimension, hour,
    value) and per (dimension, day, value), each as key columns then `SUMS`, in key order
    (SQLite; PostgreSQL sums the staged batch in SQL: `rollup_upserts.upsert_staged`)."""
    # Keys: ("", hour, provider, model) for the model rollup, (dimension, hour, value, "").
    sums: dict[tuple[str, str, str, str], list[Any]] = {}
    tag_sets: dict[str, list[tuple[str, str]]] = {"{}": []}
    for row in rows:
        hour = row[_TIME][:13]  # "YYYY-MM-DD HH"
        cost, error, latency = row[_COST], row[_STATUS] == "error", row[_LATENCY]
        inp, out, cread = row[_INPUT], row[_OUTPUT], row[_CACHE_READ]
        cwrite, reasoning = row[_CACHE_WRITE] + row[_CACHE_WRITE_1H], row[_REASONING]
        tools_cost = row[_TOOLS_COST]
        keys = [("", hour, row[_PROVIDER], row[_MODEL])]
        tags = tag_sets.get(row[_TAGS])
        if tags is None:  # events of a batch share a few tag sets: each parsed once
            tags = tag_sets[row[_TAGS]] = [(f"tag:{k}", str(v)) for k, v in
                                           json.loads(row[_TAGS]).items() if len(k) <= 64]
        if row[_JOB] is not None:
            keys.append(("job", hour, row[_JOB], ""))
        if row[_USER] is not None:
            keys.append(("user", hour, row[_USER], ""))
        keys += [(dimension, hour, value, "") for dimension, value in tags]
        for key in keys:
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = [0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0]
            acc[0] += cost
            acc[1] += 1
            acc[2] += error
            acc[3] += inp
            acc[4] += out
            acc[5] += cread
            acc[6] += cwrite
            acc[7] += reasoning
            if latency is not None:
                acc[8] += latency
                acc[9] += 1
            acc[10] += tools_cost
    days: dict[tuple[str, str, str], list[Any]] = {}
    for (dimension, hour, value, _), acc in sums.items():
        if dimension:
            day = days.get((dimension, hour[:10], value))
            if day is None:
                days[dimension, hour[:10], value] = list(acc)
            else:
                for i, v in enumerate(acc):
                    day[i] += v
    # A fixed order makes concurrent upserts lock rows in the same order: no deadlocks.
    # Integer sums are capped like the upsert caps them (Python's ints do not overflow).
    ordered = sorted(sums.items())
    return ([(project_id, f"{k[1]}:00:00.000000", k[2], k[3], *_capped(v))
             for k, v in ordered if not k[0]],
            [(project_id, k[0], f"{k[1]}:00:00.000000", k[2], *_capped(v))
             for k, v in ordered if k[0]],
            [(project_id, k[0], f"{k[1]} 00:00:00.000000", k[2], *_capped(v))
             for k, v in sorted(days.items())])


def _capped(sums: list[Any]) -> list[Any]:
    return [min(v, MAX_ID) if isinstance(v, int) else v for v in sums]


def store(session: Session, project_id: int, rows: Sequence[tuple[Any, ...]],
          count: Callable[[Session, int], None] | None = None) -> set[str]:
    """Insert ``rows``, roll up the new ones, ``count`` them (when given) and commit; the
    ids that were new.

    ``cost_events`` has no foreign key to ``projects`` (its per-row trigger query was ~12 %
    of PostgreSQL's ingest CPU): the project row is checked once per batch instead, under
    the lock the foreign key would have taken. A deletion of the project waits for this
    batch (and its delete trigger then deletes these events too); a project deleted before
    gets no events: the batch is refused with 404.
    """
    if not rows:
        session.commit()
        return set()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        _check_project(session, project_id, " FOR KEY SHARE")  # a deletion waits for us
        inserted = _insert_postgres(session, rows)
    elif dialect == "sqlite":
        inserted = _insert_sqlite(session, rows)
        _check_project(session, project_id)  # under SQLite's write lock, taken by the inserts
    else:
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    new_rows = rows if len(inserted) == len(rows) else [r for r in rows if r[_ID] in inserted]
    if new_rows:
        if dialect == "postgresql":  # the batch is in the staging table: summed there
            upsert_staged(session, _STAGE, None if new_rows is rows else list(inserted))
        else:
            models, hours, days = _rollups(project_id, new_rows)
            upsert(session, MODEL_HOURLY, models)
            upsert(session, GROUP_HOURLY, hours)
            upsert(session, GROUP_DAILY, days)
        if count is not None:  # quota usage, in the same transaction as the events
            count(session, len(new_rows))
    session.commit()
    if dialect == "postgresql":  # merge the job/user/tag deltas, about once a second
        maybe_compact(session)
        maybe_ensure(session)  # next months' partitions, about once an hour
    return inserted


def _check_project(session: Session, project_id: int, lock: str = "") -> None:
    """Raise 404 (and roll back) unless the project still exists (``lock``: the row lock
    to take on it until the commit)."""
    found = session.execute(text(f"SELECT id FROM projects WHERE id = :p{lock}"),
                            {"p": project_id}).first()
    if found is None:
        session.rollback()
        raise NotFound("No such project: it was deleted.", param="project")


def _copy_text(rows: Sequence[tuple[Any, ...]]) -> str:
    """``rows`` as PostgreSQL COPY text, each led by its position in the batch.

    Each row is one ``%`` format (C code, about three times faster than the ``csv`` module
    over the same values), chosen by which of its nullable columns are NULL: those print
    ``\\N`` and consume their None. A row whose text needs escaping (a backslash, tab, newline
    or carriage return in a value) is written value by value instead.
    """
    out: list[str] = []
    append = out.append
    formats = _COPY_FORMATS
    last_tab = len(_COLUMNS) - 1
    for ordinal, row in enumerate(rows):
        nulls = tuple(map(is_, _nullable_values(row), _NO_VALUES))
        spec = formats.get(nulls) or _copy_format(nulls)
        line = spec[0] % row
        if (line.count("\\") != spec[1] or line.count("\t") != last_tab or "\n" in line
                or "\r" in line):
            line = "\t".join("\\N" if v is None else str(v).translate(_COPY_ESCAPES)
                             for v in row)
        append(f"{ordinal}\t{line}\n")
    return "".join(out)


def _copy_format(nulls: tuple[bool, ...]) -> tuple[str, int]:
    """The COPY format of rows whose nullable columns are NULL where ``nulls`` says."""
    null_at = {position for position, null in zip(_NULLABLE, nulls, strict=True) if null}
    fields = ["\\N%.0s" if i in null_at else "%s" for i in range(len(_COLUMNS))]
    spec = _COPY_FORMATS[nulls] = ("\t".join(fields), len(null_at))
    return spec


def _insert_postgres(session: Session, rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """Store ``rows`` (ids unique among them); the event ids that were not stored before.

    COPY into a temporary staging table, then one statement: the batch's ids into
    ``cost_event_ids`` in batch order with ON CONFLICT DO NOTHING, and the events of the
    new ids into ``cost_events`` (partitioned by month). Idempotency and its concurrency
    behaviour are that unique key's (an id another transaction is inserting is waited for,
    then skipped), whatever timestamp a resend carries. The
    staging table lives as long as the connection and is emptied at every commit or
    rollback of a transaction that used it. (Measured and dropped: looking the batch's ids
    up first and COPYing the new rows straight into ``cost_events`` was slower.)
    """
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        # Created in this transaction if missing (also after a rollback dropped it); a no-op
        # otherwise. Temporary tables live in pg_temp, so the name cannot hit a real table.
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ON COMMIT DELETE ROWS AS "
                    f"SELECT 0 AS ordinal, {_COLUMN_LIST} FROM cost_events WITH NO DATA")
        cur.copy_expert(f"COPY {_STAGE} (ordinal, {_COLUMN_LIST}) FROM STDIN",
                        io.StringIO(_copy_text(rows)))
        cur.execute(_PG_INSERT)
        return {r[0] for r in cur.fetchall()}
    finally:
        cur.close()


#: The ids first, into the unpartitioned ``cost_event_ids`` (the unique key a table
#: partitioned by month cannot hold: `partitions`), then the events whose id was new.
_STAGED_COLUMNS = ", ".join(f's."{c}"' for c in _COLUMNS)
_PG_INSERT = (
    "WITH new AS (INSERT INTO cost_event_ids (project_id, event_id) "
    f"SELECT project_id, event_id FROM {_STAGE} ORDER BY ordinal "
    "ON CONFLICT (project_id, event_id) DO NOTHING RETURNING event_id) "
    f"INSERT INTO cost_events ({_COLUMN_LIST}) SELECT {_STAGED_COLUMNS} "
    f"FROM {_STAGE} s JOIN new n ON n.event_id = s.event_id ORDER BY s.ordinal "
    "RETURNING event_id")


def _insert_sqlite(session: Session, rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """Store ``rows`` (ids unique among them); the event ids that were not stored before.

    One prepared ``INSERT ... ON CONFLICT DO NOTHING`` run per row through the driver: its
    row count (1 or 0) says whether that row is new. SQLite runs one writer at a time and the
    first insert takes the write lock for the rest of the transaction, so no other batch can
    store one of these ids in between.
    """
    sql = (f"INSERT INTO cost_events ({_COLUMN_LIST}) "
           f"VALUES ({', '.join('?' * len(_COLUMNS))}) "
           "ON CONFLICT (project_id, event_id) DO NOTHING")
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    inserted: set[str] = set()
    try:
        for row in rows:
            cur.execute(sql, row)
            if cur.rowcount == 1:
                inserted.add(row[_ID])
    finally:
        cur.close()
    return inserted
