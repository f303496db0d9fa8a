"""Per-project ingest quotas: events per UTC day and per minute (429 ``quota_exceeded``) and
events stored (507 ``storage_quota_exceeded``).

``LLMLAB_QUOTA_EVENTS_PER_DAY`` and ``LLMLAB_QUOTA_EVENTS_PER_MINUTE`` (0: no quota) bound how
many new events one project may store per window, so one leaked or runaway ingest key cannot
fill the disk; ``LLMLAB_QUOTA_STORED_EVENTS`` bounds the events it keeps at any time
(``LLMLAB_RETENTION_DAYS`` and ``llmlab server db prune`` make room again).

How it is counted, exactly and cheaply:

* ``ingest_quota_usage`` holds one row per project and period (``day``, ``minute``,
  ``stored``): the window's start (for ``stored``, when it was last counted) and the events
  counted in it. A row from an older window restarts.
* Before a batch is validated or priced, one primary-key read compares the rows with the
  limits: a used-up window answers 429 with ``Retry-After`` to the window's end. That read is
  only a fast path; it does not make the quota exact.
* **The count is the check.** In the batch's own transaction, after its events are inserted,
  one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` adds the batch's *new* events
  (duplicates are free) and returns the totals. The upsert locks the project's rows until
  the commit (PostgreSQL's row lock; SQLite's one writer), so concurrent batches of a
  project add one after another and each sees the others' totals. A total past a limit rolls
  the whole batch back and refuses it: accepted events never exceed a quota, however many
  batches are in flight. A batch is taken whole or not at all.
* ``stored`` counts the project's events: its ``started`` is when they were last counted
  for real (0: never), and each batch adds its new ones. ``llmlab server db prune``
  subtracts what it deletes, in the same transaction; a project deleted takes its rows with
  it. The events are counted again (under the row's lock, so no batch's count is lost) when
  the row is new (a quota turned on for a project that already has events), an hour old (a
  quota turned off and on again, any drift), or past the cap and a minute old (other
  deletions): a full project pays at most one count a minute, however many batches it sends.
* Each refusal counts ``llmlab_quota_exceeded_total{period}`` (``day``, ``minute``,
  ``stored``).
* Not the hourly rollups: they are bucketed by each event's *own* timestamp, so a client
  sending back-dated events would never be counted in today's buckets.

With every quota at 0 (the default) nothing is read or written: the cost is one config lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app, has_app_context
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmlab_server.errors import NotFound, RateLimited, StorageFull
from llmlab_server.models import utcnow

__all__ = ["REFUSALS", "Counted", "check"]

#: Adds a batch's new events to the project's usage: ``(session, events)``; rolls the
#: transaction back and raises when that passes a quota.
Counted = Callable[[Session, int], None]

REFUSALS = Counter("llmlab_quota_exceeded_total", "Ingest batches refused by a project quota",
                   ["period"])
_SECONDS = {"day": 86_400, "minute": 60}
_SETTINGS = {"day": "QUOTA_EVENTS_PER_DAY", "minute": "QUOTA_EVENTS_PER_MINUTE",
             "stored": "QUOTA_STORED_EVENTS"}
#: Seconds a client is asked to wait when the project's storage is full.
_STORAGE_RETRY = 3600
_USAGE = text("SELECT period, started, events FROM ingest_quota_usage WHERE project_id = :p")
#: Seconds after which ``stored`` is counted from the events again: always, and when full.
_RECOUNT_EVERY = 3600
_RECOUNT_FULL = 60
# Locks (or creates) the ``stored`` row first, so the count after it sees every batch that
# counted itself before, and batches after it add to the new count.
_LOCK_STORED = text(
    "INSERT INTO ingest_quota_usage (project_id, period, started, events) "
    "VALUES (:p, 'stored', :s, 0) ON CONFLICT (project_id, period) "
    "DO UPDATE SET started = excluded.started")
_COUNT_STORED = text("SELECT count(*) FROM cost_events WHERE project_id = :p")
_SET_STORED = text("UPDATE ingest_quota_usage SET events = :n "
                   "WHERE project_id = :p AND period = 'stored'")
# A batch that checked in the old window but commits in the new one counts in the new one:
# the newer start wins, and an older start never resets a newer window. ``stored`` is added
# with start 0, so it keeps the time of its last count.
_ADD = ("INSERT INTO ingest_quota_usage (project_id, period, started, events) VALUES {values} "
        "ON CONFLICT (project_id, period) DO UPDATE SET "
        "events = CASE WHEN ingest_quota_usage.started >= excluded.started "
        "THEN ingest_quota_usage.events + excluded.events ELSE excluded.events END, "
        "started = CASE WHEN ingest_quota_usage.started >= excluded.started "
        "THEN ingest_quota_usage.started ELSE excluded.started END "
        "RETURNING period, started, events")


def _limits() -> dict[str, int]:
    """The configured quotas that are on, by period."""
    if not has_app_context():  # services run from scripts too (the demo's history)
        return {}
    config = current_app.config
    return {period: limit for period, name in _SETTINGS.items()
            if (limit := int(config.get(name) or 0)) > 0}


def _window(period: str, now: int) -> int:
    """The start of ``period``'s window holding ``now`` (Unix seconds; days start at 00:00
    UTC); 0 for ``stored``, whose row has no window."""
    return now - now % _SECONDS[period] if period in _SECONDS else 0


def _recount(session: Session, project_id: int, second: int) -> int:
    """Count the project's events into its ``stored`` row (locked first); the count."""
    session.execute(_LOCK_STORED, {"p": project_id, "s": second})
    events = int(session.execute(_COUNT_STORED, {"p": project_id}).scalar_one())
    session.execute(_SET_STORED, {"p": project_id, "n": events})
    return events


def _stale(started: int, events: int, limit: int, second: int) -> bool:
    """Whether a ``stored`` row counted at ``started`` is to be counted again."""
    return (started <= second - _RECOUNT_EVERY
            or (events >= limit and started <= second - _RECOUNT_FULL))


def _refuse(over: list[tuple[str, int]], second: int) -> None:
    """Raise the refusal for the used-up quotas ``over`` (``(period, limit)``)."""
    for period, _ in over:
        REFUSALS.labels(period).inc()
    stored = next((limit for period, limit in over if period == "stored"), None)
    if stored is not None:
        raise StorageFull(
            f"This project stores its quota of {stored:,} events; nothing more is stored "
            "until older events are deleted (LLMLAB_RETENTION_DAYS, `llmlab server db "
            "prune`) or the quota is raised.", headers={"Retry-After": str(_STORAGE_RETRY)})
    wait, period, limit = max((_window(p, second) + _SECONDS[p] - second, p, limit)
                              for p, limit in over)
    ends = datetime.fromtimestamp(second + wait, UTC).isoformat().replace("+00:00", "Z")
    raise RateLimited(
        f"This project stored its quota of {limit:,} events per {period}; events are "
        f"accepted again from {ends}.", code="quota_exceeded",
        headers={"Retry-After": str(max(wait, 1))})


def _over(limits: dict[str, int], second: int, usage: dict[str, tuple[int, int]],
          strict: bool) -> list[tuple[str, int]]:
    """The quotas ``usage`` (``{period: (started, events)}``) is past (``strict``: above
    the limit; else at it too)."""
    over = []
    for period, (started, events) in usage.items():
        limit = limits.get(period)
        if not limit or (period != "stored" and started != _window(period, second)):
            continue
        if events > limit if strict else events >= limit:
            over.append((period, limit))
    return over


def _read(session: Session, project_id: int) -> dict[str, tuple[int, int]]:
    return {period: (int(started), int(events)) for period, started, events
            in session.execute(_USAGE, {"p": project_id}).all()}


def check(session: Session, project_id: int, now: datetime | None = None) -> Counted | None:
    """Refuse (429/507) when the project used up a quota; else what counts the batch in its
    transaction and refuses it there if it passes a quota (None: quotas off)."""
    limits = _limits()
    if not limits:
        return None
    second = int((now or utcnow()).timestamp())
    usage = _read(session, project_id)
    stored = usage.get("stored")
    if ("stored" in limits and stored is not None
            and stored[1] >= limits["stored"] and _stale(*stored, limits["stored"], second)):
        events = _keep_recount(session, project_id, second)  # whatever this batch becomes
        if events is None:
            raise NotFound("No such project: it was deleted.", param="project")
        usage["stored"] = (second, events)
    over = _over(limits, second, usage, strict=False)
    if over:
        _refuse(over, second)
    periods = sorted(limits)
    values = ", ".join(f"(:p, '{period}', :s_{period}, :n)" for period in periods)
    add = text(_ADD.format(values=values))
    starts = {f"s_{period}": _window(period, second) for period in periods}

    def counted(session: Session, events: int) -> None:
        totals = {period: (int(started), int(n)) for period, started, n
                  in session.execute(add, {"p": project_id, "n": events, **starts}).all()}
        recounted = False
        if "stored" in totals and _stale(*totals["stored"], limits["stored"] + 1, second):
            totals["stored"] = (second, _recount(session, project_id, second))
            recounted = True
        over = _over(limits, second, totals, strict=True)
        if over:
            session.rollback()  # the batch's events, rollups and counts: all or nothing
            if recounted:  # the count stands without the batch: the next one need not count
                _keep_recount(session, project_id, second)
            _refuse(over, second)

    return counted


def _keep_recount(session: Session, project_id: int, second: int) -> int | None:
    """Count the project's events again, in a transaction of their own; the count (None:
    the project was deleted meanwhile)."""
    try:
        events = _recount(session, project_id, second)
        session.commit()
    except IntegrityError:  # its usage row cannot refer to it any more
        session.rollback()
        return None
    return events
