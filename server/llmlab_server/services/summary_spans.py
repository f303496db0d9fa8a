"""A summary's window cut into the pieces each source answers (`summary_sources`): partial-hour
edges (events), whole UTC hours, whole UTC days and whole ISO weeks (rollups)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from llmlab_server.services.windows import Window

__all__ = ["Spans", "spans"]

_HOUR, _DAY, _WEEK = timedelta(hours=1), timedelta(days=1), timedelta(days=7)
_EPOCH, _MONDAY = datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 3, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Spans:
    """A window cut into event-read edges and rollup-read hours, days and weeks."""

    edges: list[tuple[datetime, datetime]] = field(default_factory=list)
    #: All whole hours, [first, last) (None: the window holds none).
    hours: tuple[datetime, datetime] | None = None
    #: The whole UTC days among them, and the hours around those days.
    days: tuple[datetime, datetime] | None = None
    loose_hours: list[tuple[datetime, datetime]] = field(default_factory=list)
    #: The whole ISO weeks (Monday 00:00 UTC) among the days, and the days around them
    #: (PostgreSQL reads these instead of ``days``).
    weeks: tuple[datetime, datetime] | None = None
    loose_days: list[tuple[datetime, datetime]] = field(default_factory=list)


def _floor(t: datetime, step: timedelta, anchor: datetime = _EPOCH) -> datetime:
    steps = int((t - anchor).total_seconds() // step.total_seconds())
    return anchor + steps * step


def _ceil(t: datetime, step: timedelta, anchor: datetime = _EPOCH) -> datetime:
    floor = _floor(t, step, anchor)
    return floor if floor == t else floor + step


def spans(window: Window) -> Spans:
    """``window`` cut into partial-hour edges, whole hours, whole UTC days and whole ISO
    weeks."""
    start, end = window.start, window.end
    first, last = _ceil(start, _HOUR), _floor(end, _HOUR)
    if first >= last:
        return Spans(edges=[(start, end)])
    edges = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    day_first, day_last = _ceil(first, _DAY), _floor(last, _DAY)
    if day_first >= day_last:
        return Spans(edges, (first, last), None, [(first, last)])
    loose = [(a, b) for a, b in ((first, day_first), (day_last, last)) if a < b]
    week_first, week_last = _ceil(day_first, _WEEK, _MONDAY), _floor(day_last, _WEEK, _MONDAY)
    if week_first >= week_last:
        return Spans(edges, (first, last), (day_first, day_last), loose, None,
                     [(day_first, day_last)])
    loose_days = [(a, b) for a, b in ((day_first, week_first), (week_last, day_last)) if a < b]
    return Spans(edges, (first, last), (day_first, day_last), loose, (week_first, week_last),
                 loose_days)
