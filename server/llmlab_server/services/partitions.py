"""PostgreSQL's ``cost_events``: one partition per UTC month, created ahead, dropped when expired.

Migration 0012 makes ``cost_events`` a table partitioned by range of ``timestamp``: a
partition ``cost_events_pYYYYMM`` per month and ``cost_events_default`` for the times no
month partition covers (a client clock years off, a backfill of old months). The unique
key that makes ingest idempotent, (project_id, event_id), cannot be an index of a
partitioned table (a unique index must contain the partition key, and the same id resent
with another timestamp would land in another partition), so it lives in the small
unpartitioned ``cost_event_ids`` table, written in the same statement as the events
(`llmlab_server.services.ingest_store`).

The server keeps `MONTHS_AHEAD` months of partitions ahead: at start-up, about once an hour
after an ingest (`maybe_ensure`) and in ``llmlab server db prune`` / ``partitions``.
Retention (`llmlab_server.services.retention`) drops the month partitions wholly older than
its cutoff (`drop_expired`). SQLite keeps one plain table; every function here is a no-op
there.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from llmlab_server.models import utcnow

__all__ = ["DEFAULT", "MONTHS_AHEAD", "drop_expired", "ensure", "is_partitioned",
           "maybe_ensure", "month_partitions", "partition_name"]

#: Months of partitions kept ready after the current one.
MONTHS_AHEAD = 3
#: Seconds between two checks for missing partitions by one process (`maybe_ensure`).
CHECK_INTERVAL_S = 3600.0
#: Months this many years old or less get a partition when events arrive for them; older
#: ones stay in the default partition.
YEARS_BACK = 10
DEFAULT = "cost_events_default"
_NAME = re.compile(r"^cost_events_p(\d{4})(\d{2})$")
#: `pg_advisory_xact_lock` key of partition changes: the migration lock's (`db.upgrade`).
_LOCK = 0x6C6C6D6C6162
#: Creating or dropping a partition locks ``cost_events`` briefly; behind a long query it
#: gives up (and is retried later) instead of queueing every ingest behind it.
_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '5s'")
_next_check = 0.0
_log = logging.getLogger(__name__)


def partition_name(month: datetime) -> str:
    """The partition of the month ``month`` falls in."""
    return f"cost_events_p{month.year:04d}{month.month:02d}"


def month_start(at: datetime) -> datetime:
    """Midnight of the first day of ``at``'s month (naive UTC)."""
    return datetime(at.year, at.month, 1)


def add_months(month: datetime, n: int) -> datetime:
    """The month ``n`` months after ``month`` (a month start)."""
    index = month.year * 12 + month.month - 1 + n
    return datetime(index // 12, index % 12 + 1, 1)


def is_partitioned(conn: Connection) -> bool:
    """Whether this PostgreSQL database's ``cost_events`` is partitioned (False on SQLite)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(text("SELECT relkind FROM pg_class "
                             "WHERE oid = to_regclass('cost_events')")).scalar()
    return kind == "p"


def month_partitions(conn: Connection) -> dict[datetime, str]:
    """The month partitions of ``cost_events``, by the month they hold."""
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('cost_events')")).scalars()
    found = {}
    for name in names:
        match = _NAME.match(name)
        if match:
            found[datetime(int(match[1]), int(match[2]), 1)] = name
    return found


def create_partition(conn: Connection, month: datetime) -> str:
    """Create ``month``'s partition; rows the default partition holds for that month move
    into it (atomically: the default partition is detached and re-attached around the move).
    The caller holds the partition lock and commits."""
    name, low, high = partition_name(month), month, add_months(month, 1)
    bounds = f"FOR VALUES FROM ('{low:%Y-%m-%d}') TO ('{high:%Y-%m-%d}')"
    has_default = conn.execute(text("SELECT to_regclass(:d) IS NOT NULL"),
                               {"d": DEFAULT}).scalar()
    stray = has_default and conn.execute(text(
        f'SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE "timestamp" >= :lo '
        'AND "timestamp" < :hi)'), {"lo": low, "hi": high}).scalar()
    if not stray:
        conn.execute(text(f"CREATE TABLE {name} PARTITION OF cost_events {bounds}"))
        return name
    conn.execute(text(f"ALTER TABLE cost_events DETACH PARTITION {DEFAULT}"))
    conn.execute(text(f"CREATE TABLE {name} PARTITION OF cost_events {bounds}"))
    conn.execute(text(f'WITH moved AS (DELETE FROM {DEFAULT} WHERE "timestamp" >= :lo AND '
                      f'"timestamp" < :hi RETURNING *) INSERT INTO {name} SELECT * FROM moved'),
                 {"lo": low, "hi": high})
    conn.execute(text(f"ALTER TABLE cost_events ATTACH PARTITION {DEFAULT} DEFAULT"))
    return name


def _missing(conn: Connection, now: datetime, ahead: int) -> list[datetime]:
    """This month and the ``ahead`` next ones, and the months of the last `YEARS_BACK`
    years the default partition holds rows of, less those that have a partition."""
    have = month_partitions(conn)
    first = month_start(now)
    wanted = {add_months(first, n) for n in range(ahead + 1)}
    if conn.execute(text("SELECT to_regclass(:d) IS NOT NULL"), {"d": DEFAULT}).scalar():
        wanted.update(conn.execute(text(
            f"SELECT DISTINCT date_trunc('month', \"timestamp\") FROM {DEFAULT} "
            'WHERE "timestamp" >= :lo AND "timestamp" < :hi'),
            {"lo": add_months(first, -12 * YEARS_BACK),
             "hi": add_months(first, ahead + 1)}).scalars())
    return sorted(m for m in wanted if m not in have)


def ensure(conn: Connection, now: datetime | None = None,
           ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the missing partitions of this month and the ``ahead`` next ones (and of the
    recent months that have rows in the default partition, moving them), in the
    caller's transaction (under the migration lock: one process at a time); their names."""
    if not is_partitioned(conn):
        return []
    now = now or utcnow()
    if not _missing(conn, now, ahead):
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    conn.execute(_LOCK_TIMEOUT)
    return [create_partition(conn, month) for month in _missing(conn, now, ahead)]


def maybe_ensure(session: Session) -> None:
    """`ensure` in its own transaction, at most once per `CHECK_INTERVAL_S` per process (a
    server left running for months never writes into the default partition)."""
    global _next_check
    if time.monotonic() < _next_check:
        return
    _next_check = time.monotonic() + CHECK_INTERVAL_S
    try:
        ensure(session.connection())
        session.commit()
    except Exception:  # the batch is stored: a failure here only means "retry later"
        session.rollback()
        _log.warning("creating cost_events partitions failed", exc_info=True)


def drop_expired(session: Session, before: datetime) -> int:
    """Drop the month partitions wholly before ``before`` (their ids and quota counts go
    too), one commit each; how many events they held. Rollups are untouched."""
    conn = session.connection()
    if not is_partitioned(conn):
        return 0
    if before.tzinfo is not None:
        before = before.astimezone(UTC).replace(tzinfo=None)
    total = 0
    for month, name in sorted(month_partitions(conn).items()):
        if add_months(month, 1) > before:
            break
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        conn.execute(_LOCK_TIMEOUT)
        counts = conn.execute(text(
            f"SELECT project_id, count(*) FROM {name} GROUP BY project_id")).all()
        conn.execute(text(f"DELETE FROM cost_event_ids d USING {name} e WHERE "
                          "d.project_id = e.project_id AND d.event_id = e.event_id"))
        for project_id, n in counts:  # the storage quota's count (`quotas`)
            conn.execute(text(
                "UPDATE ingest_quota_usage SET events = GREATEST(events - :n, 0) "
                "WHERE project_id = :p AND period = 'stored'"), {"p": project_id, "n": n})
        conn.execute(text(f"DROP TABLE {name}"))
        session.commit()
        conn = session.connection()
        total += sum(n for _, n in counts)
    return total
