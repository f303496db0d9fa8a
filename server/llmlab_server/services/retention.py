"""Retention: delete raw events older than ``LLMLAB_RETENTION_DAYS``, in bounded batches.

Run by ``llmlab server db prune`` (from cron or a systemd timer: the server itself never
deletes). Each batch deletes at most ``batch_size`` events of one project through the
(project, time) index and commits, so locks are short and ingest keeps going meanwhile.

What stays exact: the rollups (``cost_rollups_hourly`` by model, ``cost_rollups_group_hourly``
and ``_daily`` by job, user and tag) are never pruned, so every summary keeps its totals over
whole hours, whatever its grouping. Only what is read from events sees just what is left: the
partial hours at the ends of a range, day/hour buckets in zones with a non-whole-hour offset,
the event list and the CSV export, as the docs say.

On PostgreSQL, where ``cost_events`` is partitioned by month (`partitions`), the month
partitions wholly before the cutoff are dropped first (no row-by-row delete, no bloat), the
ids they held deleted from ``cost_event_ids``; the rows of the partly expired month (and of
the default partition) are then deleted in batches as above, their ids with them. The
partitions of the coming months are created at the same time.

A project's ``stored`` quota count (`llmlab_server.services.quotas`) loses what is deleted,
in the same transaction, so a full project may store again at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from llmlab_server.models import CostEventRow, Project, utcnow
from llmlab_server.services import partitions

__all__ = ["DEFAULT_BATCH", "cutoff", "prune"]

#: Events deleted per transaction: a few tens of milliseconds of locking on either database.
DEFAULT_BATCH = 5_000
_UNCOUNT = text("UPDATE ingest_quota_usage SET events = CASE WHEN events > :n "
                "THEN events - :n ELSE 0 END WHERE project_id = :p AND period = 'stored'")

_DELETE_WITH_IDS = text(
    'WITH gone AS (DELETE FROM cost_events WHERE "timestamp" < :before AND (id, "timestamp") '
    'IN (SELECT id, "timestamp" FROM cost_events WHERE project_id = :p AND "timestamp" < :before '
    'ORDER BY "timestamp" LIMIT :n) RETURNING project_id, event_id), '
    "ids AS (DELETE FROM cost_event_ids d USING gone g "
    "WHERE d.project_id = g.project_id AND d.event_id = g.event_id) SELECT count(*) FROM gone")


def cutoff(days: int, now: datetime | None = None) -> datetime:
    """The time before which events are pruned when they are kept ``days`` days."""
    return (now or utcnow()) - timedelta(days=days)


def prune(session: Session, before: datetime, batch_size: int = DEFAULT_BATCH) -> int:
    """Delete events whose time is before ``before``, ``batch_size`` a commit; how many."""
    partitioned = partitions.is_partitioned(session.connection())
    partitions.ensure(session.connection())
    session.commit()
    total = partitions.drop_expired(session, before)
    for project_id in session.scalars(select(Project.id).order_by(Project.id)).all():
        while True:
            # Ids first, then delete by id: the limit bounds the batch on both databases
            # (neither takes DELETE ... LIMIT as standard).
            ids = select(CostEventRow.id).where(
                CostEventRow.project_id == project_id,
                CostEventRow.timestamp < before).order_by(
                CostEventRow.timestamp).limit(batch_size).scalar_subquery()
            if partitioned:  # the events and their ids (`partitions`)
                deleted = int(session.execute(_DELETE_WITH_IDS, {
                    "p": project_id, "before": before, "n": batch_size}).scalar_one())
            else:
                result = session.execute(delete(CostEventRow).where(CostEventRow.id.in_(ids)))
                deleted = int(getattr(result, "rowcount", 0))  # a CursorResult
            if deleted:  # the storage quota's count (`quotas`), in the same transaction
                session.execute(_UNCOUNT, {"p": project_id, "n": deleted})
            session.commit()
            total += deleted
            if deleted < batch_size:
                break
    return total
