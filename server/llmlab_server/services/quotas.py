"""Per-project ingest quotas: events stored per UTC day and per minute (429 ``quota_exceeded``).

``LLMLAB_QUOTA_EVENTS_PER_DAY`` and ``LLMLAB_QUOTA_EVENTS_PER_MINUTE`` (0: no quota) bound how
many new events one project may store, so one leaked or runaway ingest key cannot fill the
disk; with ``LLMLAB_RETENTION_DAYS`` they bound a project's stored events.

How it is counted, cheaply and exactly enough:

* ``ingest_quota_usage`` holds one row per project and period (``day``, ``minute``): the
  window's start and the events stored in it. An ingest adds its *new* events (duplicates are
  free) with one upsert in the batch's own transaction; a row from an older window restarts.
* Before a batch is validated or priced, one primary-key read compares the rows with the
  limits: a used-up window answers 429 with ``Retry-After`` to the window's end, and counts
  ``llmlab_quota_exceeded_total{period}``.
* The check and the count are not one atomic step: batches checked at the same moment may
  pass together, so a window can end above its limit by at most the batches in flight
  (concurrent requests times ``LLMLAB_MAX_BATCH``). A quota bounds volume; it is not a ledger.
* Not the hourly rollups: they are bucketed by each event's *own* timestamp, so a client
  sending back-dated events would never be counted in today's buckets.

With both quotas at 0 (the default) nothing is read or written: the cost is one config lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app, has_app_context
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.orm import Session

from llmlab_server.errors import RateLimited
from llmlab_server.models import utcnow

__all__ = ["REFUSALS", "Counted", "check"]

#: Adds a batch's new events to the project's usage: ``(session, events)``.
Counted = Callable[[Session, int], None]

REFUSALS = Counter("llmlab_quota_exceeded_total", "Ingest batches refused by a project quota",
                   ["period"])
_SECONDS = {"day": 86_400, "minute": 60}
_SETTINGS = {"day": "QUOTA_EVENTS_PER_DAY", "minute": "QUOTA_EVENTS_PER_MINUTE"}
_USAGE = text("SELECT period, started, events FROM ingest_quota_usage WHERE project_id = :p")
# A batch that checked in the old window but commits in the new one still counts in the new
# one: the newer start wins, and an older start never resets a newer window.
_ADD = text(
    "INSERT INTO ingest_quota_usage (project_id, period, started, events) "
    "VALUES (:p, 'day', :day, :n), (:p, 'minute', :minute, :n) "
    "ON CONFLICT (project_id, period) DO UPDATE SET "
    "events = CASE WHEN ingest_quota_usage.started >= excluded.started "
    "THEN ingest_quota_usage.events + excluded.events ELSE excluded.events END, "
    "started = CASE WHEN ingest_quota_usage.started >= excluded.started "
    "THEN ingest_quota_usage.started ELSE excluded.started END")


def _limits() -> dict[str, int]:
    """The configured quotas that are on, by period."""
    if not has_app_context():  # services run from scripts too (the demo's history)
        return {}
    config = current_app.config
    return {period: limit for period, name in _SETTINGS.items()
            if (limit := int(config.get(name) or 0)) > 0}


def _window(period: str, now: int) -> int:
    """The start of ``period``'s window holding ``now`` (Unix seconds; days start at 00:00 UTC)."""
    return now - now % _SECONDS[period]


def check(session: Session, project_id: int, now: datetime | None = None) -> Counted | None:
    """429 when the project used up a quota; else what counts the batch (None: quotas off)."""
    limits = _limits()
    if not limits:
        return None
    second = int((now or utcnow()).timestamp())
    refused: list[tuple[int, str, int]] = []
    for period, started, events in session.execute(_USAGE, {"p": project_id}).all():
        limit = limits.get(period)
        if limit and started == _window(period, second) and events >= limit:
            refused.append((started + _SECONDS[period] - second, period, limit))
    if refused:
        wait, period, limit = max(refused)
        for _, name, _ in refused:
            REFUSALS.labels(name).inc()
        ends = datetime.fromtimestamp(second + wait, UTC).isoformat().replace("+00:00", "Z")
        raise RateLimited(
            f"This project stored its quota of {limit:,} events per {period}; events are "
            f"accepted again from {ends}.", code="quota_exceeded",
            headers={"Retry-After": str(max(wait, 1))})

    def counted(session: Session, events: int) -> None:
        session.execute(_ADD, {"p": project_id, "n": events, "day": _window("day", second),
                               "minute": _window("minute", second)})

    return counted
