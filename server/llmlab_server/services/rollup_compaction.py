"""Merging the job/user/tag deltas that PostgreSQL ingest appends into the group rollups.

`compact` moves every delta row it sees into ``cost_rollups_group_hourly``, ``_daily`` and
``_weekly`` in one statement (``DELETE … RETURNING`` feeding the three upserts), so a delta
is either still in the deltas or already in the rollups, never both and never neither:
summaries (which add the unmerged deltas to the rollups) stay exact at every instant. A
transaction-level advisory lock keeps to one compaction at a time (per schema) across every
server process (another one skips); rows appended by batches that commit meanwhile are not in
the statement's snapshot and wait for the next run. Rows of a project deleted meanwhile are
dropped. Merging the same rows twice is impossible: the DELETE of a second run skips them.

Any server process runs it: `maybe_compact` after an ingest commit, at most once every
`INTERVAL_S` per process, so the deltas hold about a second of ingest whatever the number of
workers. ``llmlab server db compact`` is not needed: an idle server has nothing to merge, and
reads are exact either way.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from llmlab_server.models.rollup_deltas import GROUP_DELTAS
from llmlab_server.services.rollup_upserts import DELTAS, SUMS, merge_sql

__all__ = ["INTERVAL_S", "compact", "compact_connection", "maybe_compact"]

log = logging.getLogger(__name__)

#: Seconds between two compactions started by one process.
INTERVAL_S = 1.0
#: The advisory lock: this constant and the schema's name (databases that keep several
#: llmlab schemas, as the tests do, merge each on its own).
_LOCK = 0x6C6C6D6C  # "llml"
_COLUMNS = ", ".join(("project_id", "dimension", "hour", "key", *SUMS))
_MERGE = (f"WITH d AS (DELETE FROM {DELTAS} RETURNING {_COLUMNS}), "
          "s AS (SELECT * FROM d WHERE project_id IN (SELECT id FROM projects)), "
          f"{merge_sql('s')}")
_last = 0.0
assert GROUP_DELTAS.name == DELTAS


def compact_connection(conn: Connection) -> bool:
    """Merge the deltas in ``conn``'s current transaction (PostgreSQL; SQLite never has any);
    False when another compaction holds the lock."""
    if conn.dialect.name != "postgresql":
        return True
    if not conn.execute(text(
            "SELECT pg_try_advisory_xact_lock(:k, hashtext(current_schema()))"), {"k": _LOCK}).scalar():
        return False
    conn.execute(text(_MERGE))
    return True


def compact(session: Session) -> bool:
    """Merge the deltas and commit (see the module); False when another run holds the lock."""
    try:
        done = compact_connection(session.connection())
        session.commit()
        return done
    except BaseException:
        session.rollback()
        raise


def maybe_compact(session: Session) -> None:
    """`compact` when this process has not for `INTERVAL_S`; a failure is logged, not raised
    (the batch is already stored, and the next run merges what is left)."""
    global _last
    now = time.monotonic()
    if now - _last < INTERVAL_S:
        return
    _last = now
    try:
        compact(session)
    except Exception:  # the ingest answer must not depend on it
        log.warning("merging the rollup deltas failed; the next run retries", exc_info=True)
